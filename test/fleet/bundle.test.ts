/**
 * The copy of clawguard that goes to a host without one: built from this checkout's dist/, it
 * must carry no native addon (built for this machine) and still run every command a fleet runs
 * on a host. better-sqlite3's addon is left out, so these runs prove those commands never load it.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle, packageRoot, productionPackages, type Bundle } from "../../src/fleet/remote/bundle.js";

const run = promisify(execFile);
const work = mkdtempSync(path.join(tmpdir(), "clawguard-bundle-"));
const unpacked = path.join(work, "host");
let bundle: Bundle;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(unpacked, path.join(e.parentPath, e.name)));
}

beforeAll(async () => {
  bundle = await buildBundle(work);
  mkdirSync(unpacked);
  await run("tar", ["-xzf", bundle.file, "-C", unpacked]);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `clawguard ARGS` from the unpacked bundle; its exit code and output. */
async function clawguard(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [path.join(unpacked, "bin", "clawguard.js"), ...args]);
    return { code: 0, ...r };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe("the bundle copied to hosts", { timeout: 60_000 }, () => {
  it("holds no native addon, nor the dependencies that only build one", () => {
    const all = files(unpacked);
    expect(all.filter((f) => f.endsWith(".node"))).toEqual([]);
    expect(all.some((f) => f.startsWith("node_modules/better-sqlite3/lib/"))).toBe(true);
    expect(all.filter((f) => /^node_modules\/better-sqlite3\/(build|deps|src)\//.test(f))).toEqual([]);
    expect(all.filter((f) => /^node_modules\/(bindings|prebuild-install)\//.test(f))).toEqual([]);
    expect(all).toEqual(expect.arrayContaining(["package.json", "bin/clawguard.js", "dist/cli/main.js"]));
    expect(all.filter((f) => f.endsWith(".map"))).toEqual([]);
  });

  it("runs audit, harden's plan, rollback and lockdown's plan on a system without the addon", async () => {
    const root = path.join(packageRoot(), "test/fixtures/classic-guide");
    const audit = await clawguard("audit", "--root", root, "--skip", "openclaw", "--json");
    expect([0, 1]).toContain(audit.code);
    expect(JSON.parse(audit.stdout)).toMatchObject({ schema: "clawguard.audit/v1" });

    const harden = await clawguard("harden", "--root", root, "--json");
    expect(harden.stderr).toBe("");
    expect(JSON.parse(harden.stdout)).toMatchObject({ schema: "clawguard.harden/v1", applied: false });

    const rollback = await clawguard("rollback", "--list", "--json", "--state-dir", path.join(work, "state"));
    expect(JSON.parse(rollback.stdout)).toEqual({ schema: "clawguard.rollback/v1", runs: [] });

    const lockdown = await clawguard("lockdown", "--root", root, "--shield", "10.0.0.1:3128", "--json");
    expect(lockdown.stderr).toBe("");
    expect(JSON.parse(lockdown.stdout)).toMatchObject({ schema: "clawguard.lockdown-plan/v1" });
  });

  it("is small enough to copy to every host", () => {
    expect(bundle.bytes).toBeLessThan(8 * 1024 * 1024);
  });
});

describe("finding the dependencies to ship", () => {
  it("takes hoisted packages from above a global install, and nested ones inside their parent", async () => {
    const g = path.join(work, "global/lib/node_modules");
    const pkg = (dir: string, json: object) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, "package.json"), JSON.stringify(json));
    };
    pkg(path.join(g, "clawguard"), { name: "clawguard", dependencies: { a: "1", native: "1" } });
    pkg(path.join(g, "a"), { name: "a", dependencies: { b: "1" } });
    pkg(path.join(g, "a/node_modules/b"), { name: "b" });
    pkg(path.join(g, "native"), { name: "native", dependencies: { bindings: "1" } });
    writeFileSync(path.join(g, "native/binding.gyp"), "{}");
    const { packages, native } = await productionPackages(path.join(g, "clawguard"));
    expect(Object.fromEntries(packages)).toEqual({ a: path.join(g, "a"), native: path.join(g, "native") });
    expect(native).toEqual(["native"]);
  });

  it("says which dependency is missing", async () => {
    const dir = path.join(work, "broken");
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, "package.json"),
      JSON.stringify({ name: "x", dependencies: { nowhere: "1" } }),
    );
    await expect(productionPackages(dir)).rejects.toThrow(/dependency nowhere of x is not installed/);
  });
});
