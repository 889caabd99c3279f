import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  chmodSync,
  statSync,
  writeFileSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import { LocalHost } from "../../src/host/host.js";
import { runAudit } from "../../src/audit/audit.js";
import type { Finding, Layer } from "../../src/checks/finding.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");
const made: string[] = [];

afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * Copy fixture tree `test/fixtures/NAME` into a temp dir, as an unprivileged user could:
 * git keeps neither modes nor owners, so `fixture.modes` (lines "0644 path") sets modes, and
 * `@UID@` / `@GID@` in etc/passwd and etc/group become this process's ids so that ownership
 * checks can pass without root.
 */
export function loadFixture(name: string): string {
  const src = path.join(FIXTURES, name);
  if (!existsSync(src)) throw new Error(`no fixture ${src}`);
  const dir = mkdtempSync(path.join(tmpdir(), `clawguard-fx-${name}-`));
  made.push(dir);
  cpSync(src, dir, { recursive: true, verbatimSymlinks: true });
  const uid = String(process.getuid?.() ?? 1000);
  const gid = String(process.getgid?.() ?? 1000);
  for (const f of ["etc/passwd", "etc/group"]) {
    const p = path.join(dir, f);
    if (existsSync(p))
      writeFileSync(p, readFileSync(p, "utf8").replaceAll("@UID@", uid).replaceAll("@GID@", gid));
  }
  const modes = path.join(dir, "fixture.modes");
  if (existsSync(modes)) {
    for (const line of readFileSync(modes, "utf8").split("\n")) {
      const m = /^\s*([0-7]{3,4})\s+(.+?)\s*$/.exec(line);
      if (m) chmodSync(path.join(dir, m[2]!), parseInt(m[1]!, 8));
    }
    rmSync(modes);
  }
  for (const keep of walk(dir)) if (path.basename(keep) === ".keep") rmSync(keep);
  return dir;
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) yield* walk(p);
    else yield p;
  }
}

/** Audit a fixture as a non-root operator would (commands cannot run in a foreign root). */
export async function auditFixture(name: string, layers?: Layer[], opts: { isRoot?: boolean } = {}) {
  const root = loadFixture(name);
  const report = await runAudit(new LocalHost(root, { isRoot: opts.isRoot ?? false }), { layers });
  return { root, report, byId: (id: string) => report.findings.filter((f) => f.id === id) };
}

/** The one finding with this id; fails loudly when there is none or several. */
export function one(findings: Finding[], id: string): Finding {
  const hits = findings.filter((f) => f.id === id);
  if (hits.length !== 1) {
    throw new Error(
      `expected one ${id}, got ${hits.length}: ${JSON.stringify(findings.map((f) => `${f.id}=${f.status}`))}`,
    );
  }
  return hits[0]!;
}
