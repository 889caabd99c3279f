import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseUnitFile } from "../../src/facts/units.js";
import { renderGatewayUnit, type GatewayUnitInput } from "../../src/render/systemd-unit.js";
import { tempDir } from "../harden/tree.js";
import { haveTool } from "./tool.js";

const base: GatewayUnitInput = {
  user: "openclaw",
  group: "openclaw",
  home: "/home/openclaw",
  stateDir: "/home/openclaw/.openclaw",
  workspace: "/home/openclaw/.openclaw/workspace",
  port: 18789,
  openclaw: "/usr/bin/openclaw",
  www: false,
};

function score(text: string): number {
  const file = path.join(tempDir("unit"), "openclaw-gateway.service");
  writeFileSync(file, text);
  const r = spawnSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", file], {
    encoding: "utf8",
  });
  const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout + r.stderr);
  if (!m) throw new Error(`no score in systemd-analyze output:\n${r.stdout}\n${r.stderr}`);
  return Number(m[1]);
}

describe("gateway unit", () => {
  it("runs the gateway on loopback as the service user, sandboxed without what breaks Node", () => {
    const u = parseUnitFile(renderGatewayUnit(base)).Service!;
    expect(u.User).toEqual(["openclaw"]);
    expect(u.ExecStart).toEqual(["/usr/bin/openclaw gateway run --bind loopback --port 18789"]);
    expect(u.ProtectSystem).toEqual(["strict"]);
    expect(u.ProtectHome).toEqual(["tmpfs"]);
    expect(u.BindPaths).toEqual(["/home/openclaw/.openclaw"]);
    expect(u.ReadWritePaths).toEqual(["/home/openclaw/.openclaw"]);
    expect(u.SystemCallErrorNumber).toEqual(["EPERM"]);
    expect(u.CapabilityBoundingSet).toEqual([]);
    expect(u.PrivateUsers).toEqual(["yes"]);
    expect(u.UMask).toEqual(["0077"]);
    expect(u.CacheDirectory).toEqual(["openclaw/openclaw"]);
    expect(u.Environment).toContain("XDG_CACHE_HOME=/var/cache/openclaw/openclaw");
    expect(u.MemoryDenyWriteExecute).toBeUndefined();
    expect(u.RestrictSUIDSGID).toBeUndefined();
    expect(u.IPAddressDeny).toBeUndefined();
  });

  it("with --www joins www-data, may write /var/www, and keeps group access (no PrivateUsers)", () => {
    const u = parseUnitFile(renderGatewayUnit({ ...base, www: true, workspace: "/srv/agent work" })).Service!;
    expect(u.SupplementaryGroups).toEqual(["www-data"]);
    expect(u.ReadWritePaths).toEqual(["/home/openclaw/.openclaw", '"/srv/agent work"', "/var/www"]);
    expect(u.PrivateUsers).toEqual(["no"]);
  });

  it("with a shield sends traffic through it and lets the kernel refuse every other address", () => {
    const u = parseUnitFile(
      renderGatewayUnit({ ...base, shield: { host: "10.20.0.1", port: 3128 } }),
    ).Service!;
    expect(u.Environment).toContain("OPENCLAW_PROXY_URL=http://10.20.0.1:3128");
    expect(u.Environment).toContain("HTTPS_PROXY=http://10.20.0.1:3128");
    expect(u.IPAddressDeny).toEqual(["any"]);
    expect(u.IPAddressAllow).toEqual(["localhost", "10.20.0.1"]);
  });

  it.runIf(haveTool("systemd-analyze"))(
    "scores at most 1.5 in systemd-analyze security, with and without options",
    () => {
      expect(score(renderGatewayUnit(base))).toBeLessThanOrEqual(1.5);
      expect(
        score(renderGatewayUnit({ ...base, www: true, shield: { host: "10.20.0.1", port: 3128 } })),
      ).toBeLessThanOrEqual(1.5);
      // The check can fail: a plain unit scores far worse.
      expect(score("[Service]\nExecStart=/usr/bin/openclaw gateway run\n")).toBeGreaterThan(5);
    },
  );
});
