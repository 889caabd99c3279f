import { existsSync, lchownSync, readdirSync, readFileSync, writeFileSync, lstatSync } from "node:fs";
import path from "node:path";
import { runAudit } from "../../src/audit/audit.js";
import type { Layer } from "../../src/checks/finding.js";
import { LocalHost } from "../../src/host/host.js";
import { loadFixture } from "../helpers/fixture.js";

/** uid the service user gets when the tests run as root (nobody, so a dropped child can act as it). */
export const SERVICE_UID_AS_ROOT = 65534;

function chownTree(p: string, uid: number): void {
  lchownSync(p, uid, uid);
  if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) chownTree(path.join(p, n), uid);
}

/**
 * Load an OpenClaw fixture whose service user is `@UID@`. Run as root, @UID@ would make that
 * user uid 0 (root, by definition not dedicated), so the user becomes nobody and owns the tree.
 */
export function loadServiceFixture(name: string): { root: string; uid: number } {
  const root = loadFixture(name);
  if (process.getuid?.() !== 0) return { root, uid: process.getuid?.() ?? 1000 };
  const uid = SERVICE_UID_AS_ROOT;
  for (const f of ["etc/passwd", "etc/group"]) {
    const p = path.join(root, f);
    const src = readFileSync(
      path.join(path.dirname(new URL(import.meta.url).pathname), "../fixtures", name, f),
      "utf8",
    );
    writeFileSync(p, src.replaceAll("@UID@", String(uid)).replaceAll("@GID@", String(uid)));
  }
  if (existsSync(path.join(root, "home"))) chownTree(path.join(root, "home"), uid);
  return { root, uid };
}

/** Audit a service fixture as a non-root operator would. */
export async function auditServiceFixture(name: string, layers: Layer[]) {
  const { root, uid } = loadServiceFixture(name);
  const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers });
  return { root, uid, report };
}
