/**
 * This checkout as an npm tarball that installs with no registry: dist, bin and package.json,
 * with the production dependencies bundled (bundleDependencies), better-sqlite3's addon built
 * for this machine's Node and nothing of its sources. What an operator embeds in user-data for
 * servers that cannot reach npm at first boot; the containers here reach nothing.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { PROJECT_DIR, productionModules } from "./install.js";
import { cmd } from "./run.js";

export async function bundledTarball(workDir: string): Promise<string> {
  if (!existsSync(path.join(PROJECT_DIR, "dist/cli/main.js"))) throw new Error("run npm run build first");
  const stage = path.join(workDir, "bundle", "package");
  rmSync(path.dirname(stage), { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  for (const d of ["dist", "bin"])
    cpSync(path.join(PROJECT_DIR, d), path.join(stage, d), { recursive: true });
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as Record<
    string,
    unknown
  >;
  delete pkg.devDependencies;
  delete pkg.scripts;
  pkg.bundleDependencies = Object.keys(pkg.dependencies as Record<string, string>);
  writeFileSync(path.join(stage, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  for (const dir of await productionModules()) {
    const rel = path.relative(PROJECT_DIR, dir);
    cpSync(dir, path.join(stage, rel), { recursive: true, verbatimSymlinks: true });
  }
  // The built addon is all better-sqlite3 needs at run time.
  const bs = path.join(stage, "node_modules/better-sqlite3");
  for (const p of [
    "deps",
    "src",
    "build/Release/obj",
    "build/Release/obj.target",
    "build/Release/.deps",
    "build/deps",
  ])
    rmSync(path.join(bs, p), { recursive: true, force: true });
  for (const f of ["build/Release/sqlite3.a", "build/Release/test_extension.node"])
    rmSync(path.join(bs, f), { force: true });
  await cmd(["npm", "pack", "--ignore-scripts", "--pack-destination", path.dirname(stage), stage], {
    timeoutMs: 300_000,
  });
  const version = pkg.version as string;
  return path.join(path.dirname(stage), `clawguard-${version}.tgz`);
}
