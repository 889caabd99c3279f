import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import {
  firstBootScript,
  renderJoinCloudInit,
  sizeWarnings,
  type JoinCloudInitInput,
} from "../../src/render/cloud-init-join.js";
import { describeTarball, tarballEntries } from "../../src/render/npm-tarball.js";
import { tempDir } from "../harden/tree.js";
import { haveTool } from "./tool.js";

const input: JoinCloudInitInput = {
  profileYaml: "user: openclaw\n",
  package: { kind: "npm", spec: "clawguard@0.1.0" },
  joinCode: "Y2cB-code",
  nodeVersion: "24.11.1",
  lockdownFlags: ["--allow-dhcp"],
};

/** A tar (as npm pack writes it) of the given paths, gzipped. */
function tarball(dir: string, paths: string[]): Buffer {
  for (const p of paths) {
    mkdirSync(path.join(dir, path.dirname(p)), { recursive: true });
    writeFileSync(path.join(dir, p), "{}");
  }
  const r = spawnSync("tar", ["-C", dir, "-cf", "-", ...paths]);
  return gzipSync(r.stdout);
}

describe("cloud-init --join user-data", () => {
  it("writes the code and the package root's alone, then runs one script: clawguard, wireguard, harden, join", () => {
    const doc = parse(
      renderJoinCloudInit({
        ...input,
        package: { kind: "embedded", base64: "QUJD", bundled: true, name: "x.tgz" },
      }),
    ) as {
      write_files: Array<{ path: string; permissions: string; content: string; encoding?: string }>;
      runcmd: string[][];
    };
    expect(doc.write_files.map((f) => [f.path, f.permissions])).toEqual([
      ["/etc/clawguard/profile.yaml", "0600"],
      ["/etc/clawguard/join.code", "0600"],
      ["/var/lib/clawguard/firstboot.sh", "0700"],
      ["/var/lib/clawguard/clawguard.tgz", "0600"],
    ]);
    expect(doc.write_files[3]).toMatchObject({ encoding: "b64", content: "QUJD" });
    expect(doc.runcmd).toEqual([["/var/lib/clawguard/firstboot.sh"]]);
    const script = doc.write_files[2]!.content;
    const order = [
      "step node",
      "step clawguard",
      "step wireguard",
      "step harden",
      "step join",
      "rm -f /etc/clawguard/join.code",
    ];
    expect(order.map((s) => script.indexOf(s))).toEqual(
      [...order.map((s) => script.indexOf(s))].sort((a, b) => a - b),
    );
    expect(script).toMatch(/^set -eu$/m);
    // A bundled tarball installs without a registry, and without building anything.
    expect(script).toContain(
      "npm install --global --no-fund --no-audit --offline --ignore-scripts /var/lib/clawguard/clawguard.tgz",
    );
    expect(script).toContain(
      `clawguard lockdown --join "$(cat /etc/clawguard/join.code)" --apply '--allow-dhcp' --json`,
    );
    // The image's Node is used when it is 20 or later; otherwise nodejs.org's, checked.
    expect(script).toMatch(/versions\.node.*>= 20/);
    expect(script).toContain("sha256sum -c -");
    expect(script).toContain("apt_install --no-install-recommends wireguard-go");
  });

  it("installs an npm spec or a URL with npm, scripts and all", () => {
    expect(firstBootScript(input)).toContain("npm install --global --no-fund --no-audit 'clawguard@0.1.0'");
    const url = firstBootScript({ ...input, package: { kind: "npm", spec: "https://example.com/c'x.tgz" } });
    expect(url).toContain(`'https://example.com/c'\\''x.tgz'`);
    expect(() => firstBootScript({ ...input, nodeVersion: "24" })).toThrow(/not X.Y.Z/);
  });

  it.runIf(haveTool("cloud-init"))("passes cloud-init's schema check, and a shell's syntax check", () => {
    const file = path.join(tempDir("ci-join"), "user-data");
    writeFileSync(file, renderJoinCloudInit(input));
    const r = spawnSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const sh = spawnSync("sh", ["-n"], { input: firstBootScript(input), encoding: "utf8" });
    expect(sh.status, sh.stderr).toBe(0);
  });

  it("warns past 16, 32 and 64 KiB, naming the providers each is too big for", () => {
    expect(sizeWarnings("x".repeat(16 * 1024))).toEqual([]);
    expect(sizeWarnings("x".repeat(16 * 1024 + 1))[0]).toMatch(/over the 16 KiB limit of AWS EC2 \(16 KB\)/);
    expect(sizeWarnings("x".repeat(40 * 1024))[0]).toMatch(
      /over the 32 KiB limit of AWS EC2 \(16 KB\), Hetzner Cloud \(32 KiB\)/,
    );
    expect(sizeWarnings("x".repeat(70 * 1024))[0]).toMatch(
      /70 KiB, over the 64 KiB limit of .*DigitalOcean and Azure/,
    );
  });

  it("tells a tarball that bundles its dependencies from one that does not", () => {
    const dir = tempDir("tgz");
    const plain = tarball(path.join(dir, "a"), ["package/package.json", "package/dist/x.js"]);
    expect(describeTarball(plain)).toEqual({ isPackage: true, bundled: false });
    const bundled = tarball(path.join(dir, "b"), [
      "package/package.json",
      "package/node_modules/yaml/package.json",
    ]);
    expect(describeTarball(bundled)).toEqual({ isPackage: true, bundled: true });
    expect(tarballEntries(bundled)).toContain("package/node_modules/yaml/package.json");
    expect(describeTarball(tarball(path.join(dir, "c"), ["other/file"]))).toEqual({
      isPackage: false,
      bundled: false,
    });
    expect(() => describeTarball(Buffer.from("nope"))).toThrow(/not a gzipped tarball/);
  });
});

describe("clawguard cloud-init --join", () => {
  const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../bin/clawguard.js");
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [BIN, "cloud-init", ...args], { encoding: "utf8" });

  it("refuses a damaged code or one without a key before rendering, and warns of size and secrets", async () => {
    const { encodeJoinCode } = await import("../../src/shield/wireguard/join-code.js");
    const { generateKeyPair } = await import("../../src/shield/wireguard/keys.js");
    const fields = {
      agent: "scout",
      endpoint: { host: "203.0.113.5", port: 51820 },
      shieldPublicKey: generateKeyPair().publicKey,
      addresses: ["10.77.0.2/32"],
      shieldAddresses: ["10.77.0.1/32"],
      proxy: { host: "10.77.0.1", port: 3128 },
      expires: Math.floor(Date.now() / 1000) + 3600,
    };
    const good = encodeJoinCode({ ...fields, privateKey: generateKeyPair().privateKey });
    const dir = tempDir("ci-cli");
    const tgz = path.join(dir, "clawguard.tgz");
    writeFileSync(tgz, tarball(path.join(dir, "t"), ["package/package.json", "package/big.bin"]));
    writeFileSync(path.join(dir, "t/package/big.bin"), "x");
    const damaged = cli(["--join", good.slice(0, -2), "--package", "clawguard@0.1.0"]);
    expect(damaged.status).toBe(2);
    expect(damaged.stderr).toMatch(/join code is damaged/);
    const keyless = cli(["--join", encodeJoinCode(fields), "--package", "clawguard@0.1.0"]);
    expect(keyless.stderr).toMatch(/carries no private key/);
    const ok = cli(["--join", good, "--package", tgz, "--json"]);
    expect(ok.status, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout) as { userData: string; warnings: string[] };
    expect(j.userData).toContain(good);
    expect(j.warnings.join("\n")).toMatch(/carries the agent's private key until first boot/);
    const text = cli(["--join", good, "--package", "https://example.com/clawguard-0.1.0.tgz"]);
    expect(text.stdout).toContain("'https://example.com/clawguard-0.1.0.tgz'");
    expect(cli(["--join", good, "--package", "./missing.tgz"]).stderr).toMatch(
      /--package: \.\/missing.tgz does not exist/,
    );
  }, 60_000);
});
