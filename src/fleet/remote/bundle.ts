/**
 * This clawguard as one .tar.gz to copy to a host that has none: bin/, dist/, package.json and
 * the production dependencies, found the way Node finds them (so a global install with hoisted
 * modules works too). A package with a native addon (better-sqlite3) goes without its build,
 * its sources and the dependencies that only build or load the addon: the commands a fleet runs
 * on a host (audit, harden, rollback, lockdown) never load it, which keeps the bundle free of
 * code built for this machine's CPU and Node. test/fleet/bundle.test.ts runs them from one.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ClawguardError } from "../../errors.js";

export interface Bundle {
  file: string;
  version: string;
  bytes: number;
}

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** The directory holding this clawguard's package.json (dist/fleet/remote -> ../../..). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
}

async function readPackage(dir: string): Promise<PackageJson> {
  return JSON.parse(await readFile(path.join(dir, "package.json"), "utf8")) as PackageJson;
}

/** Where Node finds package `name` from `dir`: dir/node_modules/name, then each parent's. */
function findPackage(dir: string, name: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    const candidate = path.join(d, "node_modules", name);
    if (existsSync(path.join(candidate, "package.json"))) return candidate;
    if (path.dirname(d) === d) return undefined;
  }
}

/**
 * Top-level package directories to ship, by name. A package nested in another's node_modules
 * travels inside that one's directory.
 */
export async function productionPackages(
  root: string,
): Promise<{ packages: Map<string, string>; native: string[] }> {
  const packages = new Map<string, string>();
  const native: string[] = [];
  const seen = new Set<string>();
  const visit = async (from: string, pkg: PackageJson): Promise<void> => {
    const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})];
    for (const name of names) {
      const dir = findPackage(from, name);
      if (!dir) {
        if (pkg.optionalDependencies?.[name] !== undefined) continue;
        throw new ClawguardError(
          "CG_REMOTE_UNSUPPORTED",
          `dependency ${name} of ${pkg.name ?? from} is not installed`,
          {
            where: from,
            hint: "run npm install where clawguard is installed",
          },
        );
      }
      if (seen.has(dir)) continue;
      seen.add(dir);
      // dir is BASE/node_modules/NAME: BASE is the root or above it for a top-level package,
      // another package for one nested in it (which travels inside that one).
      const base = dir.slice(0, -path.join("node_modules", name).length - 1);
      if (base === root || root.startsWith(base + path.sep)) packages.set(name, dir);
      if (existsSync(path.join(dir, "binding.gyp"))) {
        native.push(name);
        continue;
      }
      await visit(dir, await readPackage(dir));
    }
  };
  await visit(root, await readPackage(root));
  return { packages, native };
}

const run = promisify(execFile);

/** Build the bundle in `workDir` (a private directory); the file is `workDir/clawguard-VERSION.tgz`. */
export async function buildBundle(workDir: string, root = packageRoot()): Promise<Bundle> {
  const pkg = await readPackage(root);
  const version = pkg.version ?? "0.0.0";
  if (!existsSync(path.join(root, "dist", "cli", "main.js")))
    throw new ClawguardError("CG_REMOTE_UNSUPPORTED", "this clawguard has no dist/ to copy", {
      where: root,
      hint: "npm run build",
    });
  const stage = path.join(workDir, "stage");
  await mkdir(path.join(stage, "node_modules"), { recursive: true });
  for (const entry of ["bin", "dist", "package.json"])
    await symlink(path.join(root, entry), path.join(stage, entry));
  const { packages, native } = await productionPackages(root);
  for (const [name, dir] of packages) {
    const link = path.join(stage, "node_modules", name);
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(dir, link);
  }
  const file = path.join(workDir, `clawguard-${version}.tgz`);
  const excludes = [
    "*.map",
    "*.d.ts",
    "*.d.mts",
    "*.d.cts",
    ...native.flatMap((n) => ["build", "deps", "src"].map((d) => `./node_modules/${n}/${d}`)),
  ];
  // -h follows the links into the real directories; the owner on the host is root's.
  await run("tar", [
    "-czhf",
    file,
    "--owner=0",
    "--group=0",
    ...excludes.map((e) => `--exclude=${e}`),
    "-C",
    stage,
    ".",
  ]);
  return { file, version, bytes: (await stat(file)).size };
}
