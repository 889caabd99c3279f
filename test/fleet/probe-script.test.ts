/**
 * The probe's root half, run by this machine's sh: which clawguard is there and its version,
 * read from an npm install's package.json without starting it, or asked with --version.
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { PROBE_SCRIPT, ROOT_PROBE } from "../../src/fleet/remote/probe.js";

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), "clawguard-probe-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A clawguard that leaves a mark when started, and says `version`. */
function executable(file: string, version: string): void {
  writeFileSync(file, `#!/bin/sh\ntouch "${file}.ran"\necho ${version}\n`);
  chmodSync(file, 0o755);
}

/** A package at DIR/pkg (its package.json as given) linked from DIR/bin/clawguard, as npm links it. */
function npmInstall(name: string, packageJson: string): string {
  const root = path.join(dir, name);
  mkdirSync(path.join(root, "pkg/bin"), { recursive: true });
  mkdirSync(path.join(root, "bin"));
  writeFileSync(path.join(root, "pkg/package.json"), packageJson);
  executable(path.join(root, "pkg/bin/clawguard.js"), "7.7.7");
  symlinkSync("../pkg/bin/clawguard.js", path.join(root, "bin/clawguard"));
  return root;
}

async function probe(binDir: string): Promise<Map<string, string>> {
  const PATH = [binDir, path.dirname(process.execPath), "/usr/sbin", "/usr/bin", "/sbin", "/bin"].join(":");
  const { stdout } = await run("sh", ["-c", ROOT_PROBE], { env: { PATH } });
  return new Map(
    stdout
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

const npmPackage = (name: string) =>
  JSON.stringify({ name, version: "0.4.2", dependencies: { yaml: "^2.0.0" } }, null, 2) + "\n";

describe("the probe run as root", () => {
  it("travels inside single quotes", () => {
    expect(ROOT_PROBE).not.toContain("'");
    expect(PROBE_SCRIPT).toContain(`sh -c '${ROOT_PROBE}'`);
  });

  it("reads an npm install's version from its package.json, without starting it", async () => {
    const root = npmInstall("npm", npmPackage("clawguard"));
    const kv = await probe(path.join(root, "bin"));
    expect(kv.get("clawguard")).toBe(path.join(root, "bin/clawguard"));
    expect(kv.get("clawguard_version")).toBe("0.4.2");
    expect(existsSync(path.join(root, "pkg/bin/clawguard.js.ran"))).toBe(false);
    expect(kv.get("node")).toBe(process.execPath);
    expect(kv.get("node_version")).toBe(process.versions.node);
    expect(kv.get("root_uid")).toMatch(/^\d+$/);
  });

  it("asks clawguard itself when the package.json is not clawguard's", async () => {
    const root = npmInstall("other", npmPackage("clawguard-plugin"));
    const kv = await probe(path.join(root, "bin"));
    expect(kv.get("clawguard_version")).toBe("7.7.7");
    expect(existsSync(path.join(root, "pkg/bin/clawguard.js.ran"))).toBe(true);
  });

  it("asks a wrapper script with --version", async () => {
    const bin = path.join(dir, "wrapper");
    mkdirSync(bin);
    executable(path.join(bin, "clawguard"), "0.9.0");
    const kv = await probe(bin);
    expect(kv.get("clawguard_version")).toBe("0.9.0");
    expect(existsSync(path.join(bin, "clawguard.ran"))).toBe(true);
  });

  it("says nothing of a clawguard that is not there", async () => {
    const bin = path.join(dir, "none");
    mkdirSync(bin);
    const kv = await probe(bin);
    expect(kv.has("clawguard")).toBe(false);
    expect(kv.has("clawguard_version")).toBe(false);
  });
});
