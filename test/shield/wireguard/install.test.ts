import { execFileSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../../src/shield/config.js";
import { installShield } from "../../../src/shield/install.js";
import { isWireguardKey } from "../../../src/shield/wireguard/keys.js";
import { tempDir } from "../../harden/tree.js";
import { haveTool } from "../../render/tool.js";

const WG = { endpoint: "203.0.113.5:51820", iface: "cg0", addresses: ["10.77.0.1/16", "fd77:77::1/64"] };
const opts = (root: string) => ({
  root,
  configDir: "/etc/clawguard",
  user: "clawguard-shield",
  wireguard: WG,
});

function exposure(unitFile: string): number {
  const out = execFileSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", unitFile], {
    encoding: "utf8",
    env: { ...process.env, SYSTEMD_COLORS: "0", SYSTEMD_UTF8: "0" },
  });
  return Number(/Overall exposure level for .*: (\d+\.\d)/.exec(out)?.[1]);
}

describe("clawguard shield install --wireguard", () => {
  it("writes the key, the interface, the sync daemon and a config on the tunnel; the proxy's unit only starts after it", async () => {
    const root = tempDir("install-wg");
    const r = await installShield(opts(root));
    expect(r.files.map((f) => [f.path, f.action])).toEqual([
      ["/etc/systemd/system/clawguard-shield.service", "created"],
      ["/etc/clawguard/shield.yaml", "created"],
      ["/etc/clawguard/admin.token", "created"],
      ["/etc/clawguard/wireguard.key", "created"],
      ["/etc/wireguard/cg0.conf", "created"],
      ["/etc/systemd/system/clawguard-shield-wireguard.service", "created"],
    ]);
    const key = path.join(root, "etc/clawguard/wireguard.key");
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(isWireguardKey(readFileSync(key, "utf8").trim())).toBe(true);
    expect(statSync(path.join(root, "etc/wireguard/cg0.conf")).mode & 0o777).toBe(0o600);
    const cfg = parseShieldConfig(
      readFileSync(path.join(root, "etc/clawguard/shield.yaml"), "utf8"),
      "/etc/clawguard/shield.yaml",
    );
    expect(cfg.listen).toEqual({ host: "10.77.0.1", port: 3128 });
    expect(cfg.wireguard).toMatchObject({
      interface: "cg0",
      listenPort: 51820,
      privateKeyFile: "/etc/clawguard/wireguard.key",
    });
    const unit = readFileSync(path.join(root, "etc/systemd/system/clawguard-shield.service"), "utf8");
    expect(unit).toMatch(/^After=network-online.target wg-quick@cg0.service$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=$/m);
    const sync = readFileSync(
      path.join(root, "etc/systemd/system/clawguard-shield-wireguard.service"),
      "utf8",
    );
    expect(sync).toMatch(/^ExecStart=\S+ \S+ shield wireguard-sync --config \/etc\/clawguard\/shield.yaml$/m);
    expect(sync).toMatch(/^CapabilityBoundingSet=CAP_NET_ADMIN CAP_DAC_READ_SEARCH CAP_CHOWN$/m);
    expect(r.next.at(-2)).toBe(
      "systemctl daemon-reload && systemctl enable --now wg-quick@cg0 clawguard-shield-wireguard.service clawguard-shield.service",
    );
    expect(r.next.join("\n")).toMatch(/open UDP 51820/);
  });

  it.runIf(haveTool("systemd-analyze"))(
    "keeps the proxy's exposure score where it was without the tunnel",
    async () => {
      const plain = tempDir("install-plain");
      const wg = tempDir("install-wg");
      await installShield({ root: plain, configDir: "/etc/clawguard", user: "clawguard-shield" });
      await installShield(opts(wg));
      const unit = "etc/systemd/system/clawguard-shield.service";
      expect(exposure(path.join(wg, unit))).toBe(exposure(path.join(plain, unit)));
      expect(exposure(path.join(wg, unit))).toBeLessThanOrEqual(1.1);
    },
  );

  it("adds the tunnel to an existing config, moving a public listen onto it, and never replaces the key", async () => {
    const root = tempDir("install-wg");
    await installShield({ root, configDir: "/etc/clawguard", user: "clawguard-shield" });
    const file = path.join(root, "etc/clawguard/shield.yaml");
    writeFileSync(
      file,
      "# mine\nlisten: 0.0.0.0:3128 # all of them\nallow_cleartext: true\nlog: { path: x.db }\n",
    );
    const r = await installShield(opts(root));
    expect(r.files.filter((f) => f.path === "/etc/clawguard/shield.yaml").at(-1)).toMatchObject({
      action: "updated",
      note: "wireguard section added; listen moved from 0.0.0.0:3128 to the tunnel",
    });
    const text = readFileSync(file, "utf8");
    expect(text).toMatch(/^# mine\nlisten: 10.77.0.1:3128 # all of them\nwireguard:\n/);
    expect(parseShieldConfig(text, "/etc/clawguard/shield.yaml").wireguard?.addresses).toEqual(WG.addresses);
    const key = readFileSync(path.join(root, "etc/clawguard/wireguard.key"), "utf8");
    const again = await installShield(opts(root));
    expect(again.files.find((f) => f.path === "/etc/clawguard/wireguard.key")?.action).toBe("kept");
    expect(readFileSync(path.join(root, "etc/clawguard/wireguard.key"), "utf8")).toBe(key);
    expect(again.files.find((f) => f.path === "/etc/wireguard/cg0.conf")?.action).toBe("unchanged");
  });

  it("refuses bad tunnel flags before writing anything", async () => {
    const root = tempDir("install-wg");
    await expect(installShield({ ...opts(root), wireguard: { ...WG, endpoint: "nowhere" } })).rejects.toThrow(
      /--endpoint: no port/,
    );
    await expect(
      installShield({ ...opts(root), wireguard: { ...WG, addresses: ["10.77.0.1/31"] } }),
    ).rejects.toThrow(/--address: \/31/);
    await expect(
      installShield({ ...opts(root), wireguard: { ...WG, addresses: ["fd77::1/64"] } }),
    ).rejects.toThrow(/IPv4 first/);
    expect(() => statSync(path.join(root, "etc"))).toThrow();
  });
});
