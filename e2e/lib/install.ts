import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AuditReport } from "../../src/audit/audit.js";
import type { Container } from "./container.js";
import { cmd, type CmdResult } from "./run.js";

export const PROJECT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const INSTALL_DIR = "/opt/clawguard";

/** Directories of the production dependency tree, outermost first, nested ones dropped. */
export async function productionModules(): Promise<string[]> {
  const r = await cmd(["npm", "ls", "--omit=dev", "--all", "--parseable"], {
    cwd: PROJECT_DIR,
    check: false,
  });
  // npm ls exits 1 on extraneous packages yet still lists the tree; an empty list is the failure.
  const dirs = r.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(path.join(PROJECT_DIR, "node_modules") + path.sep))
    .sort();
  if (dirs.length === 0) throw new Error(`npm ls --omit=dev in ${PROJECT_DIR} listed nothing:\n${r.stderr}`);
  return dirs.filter((d, i) => !dirs.slice(0, i).some((p) => d.startsWith(p + path.sep)));
}

/**
 * Put this checkout's build into the container as a user would have it: the machine's Node
 * binary at /usr/local/bin/node, dist/, bin/, package.json and the production node_modules
 * (better-sqlite3's native addon built for that same Node) under /opt/clawguard, and a
 * `clawguard` command on PATH.
 */
export async function installClawguard(ct: Container): Promise<void> {
  if (!existsSync(path.join(PROJECT_DIR, "dist/cli/main.js"))) {
    throw new Error(`${PROJECT_DIR}/dist/cli/main.js is missing: run "npm run build" first`);
  }
  const node = (await cmd(["sh", "-c", 'readlink -f "$(command -v node)"'])).stdout.trim();
  const dest = path.join(ct.root, INSTALL_DIR.slice(1));
  mkdirSync(path.join(dest, "node_modules"), { recursive: true });
  await cmd(["cp", node, path.join(ct.root, "usr/local/bin/node")]);
  await cmd(["cp", "-a", "dist", "bin", "package.json", dest], { cwd: PROJECT_DIR });
  for (const dir of await productionModules()) {
    const rel = path.relative(PROJECT_DIR, dir);
    mkdirSync(path.join(dest, path.dirname(rel)), { recursive: true });
    await cmd(["cp", "-a", dir, path.join(dest, path.dirname(rel))]);
  }
  const wrapper = path.join(ct.root, "usr/local/bin/clawguard");
  writeFileSync(wrapper, `#!/bin/sh\nexec /usr/local/bin/node ${INSTALL_DIR}/bin/clawguard.js "$@"\n`, {
    mode: 0o755,
  });
  const v = await ct.exec(["clawguard", "--help"], { check: false });
  if (v.code !== 0) throw new Error(`clawguard does not run inside ${ct.name}:\n${v.stderr}${v.stdout}`);
}

export interface AuditRun {
  result: CmdResult;
  report: AuditReport;
}

/** `clawguard audit --json` inside the container, as root; its exit code is 0 or 1, never 2. */
export async function auditIn(ct: Container, args: string[] = []): Promise<AuditRun> {
  const result = await ct.exec(["clawguard", "audit", "--json", ...args], { check: false });
  if (result.code !== 0 && result.code !== 1) {
    throw new Error(`clawguard audit exited ${result.code} in ${ct.name}:\n${result.stderr}`);
  }
  let report: AuditReport;
  try {
    report = JSON.parse(result.stdout) as AuditReport;
  } catch (e) {
    throw new Error(
      `clawguard audit --json printed no JSON (${(e as Error).message}):\n${result.stdout.slice(0, 2000)}`,
    );
  }
  return { result, report };
}
