import { existsSync, lstatSync, readdirSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { applyLockdown, recordedShield, rollbackLockdown } from "../../src/lockdown/apply.js";
import { keygen, prepareJoin } from "../../src/lockdown/join.js";
import { planLockdown, shownPlan, type PlanInput } from "../../src/lockdown/plan.js";
import { encodeJoinCode, type JoinCode } from "../../src/shield/wireguard/join-code.js";
import { generateKeyPair, publicKeyOf } from "../../src/shield/wireguard/keys.js";
import { makeTree, read } from "./tree.js";

const NOW = 1_800_000_000;
const SLOW = 60_000;
const shieldKey = generateKeyPair();
const agentKey = generateKeyPair();
const CA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOa3Z7kTJ0Wl0m2F2xq2cC8m3kqJd1QkXo0l3bqK9yQ3 fleet-ca";

function code(over: Partial<JoinCode> = {}): string {
  return encodeJoinCode({
    agent: "scout",
    endpoint: { host: "203.0.113.5", port: 51820 },
    shieldPublicKey: shieldKey.publicKey,
    addresses: ["10.77.0.2/32", "fd77:77::2/128"],
    shieldAddresses: ["10.77.0.1/32", "fd77:77::1/128"],
    proxy: { host: "10.77.0.1", port: 3128 },
    privateKey: agentKey.privateKey,
    expires: NOW + 3600,
    ...over,
  });
}

const base: Omit<PlanInput, "shield"> = {
  allowOut: [],
  dns: [],
  dhcp: false,
  log: true,
  forward: true,
  backend: "nft",
};
const filesOnly = { live: false, systemd: false } as const;

describe("lockdown --join", () => {
  it(
    "plans the tunnel: its config, enabled at boot, UDP to the endpoint only, the proxy only through the tunnel",
    async () => {
      const root = makeTree();
      const host = new LocalHost(root);
      const j = await prepareJoin(host, {
        code: code(),
        nowSeconds: NOW,
        iface: "cg0",
        keyFile: "/etc/clawguard/wireguard.key",
      });
      const plan = await planLockdown(host, { ...base, shield: j.shield, tunnel: j.tunnel });
      expect(plan.shield.proxyUrl).toBe("http://10.77.0.1:3128");
      expect(plan.ruleset).toContain('oifname "cg0" ip daddr 10.77.0.1 tcp dport 3128 accept');
      expect(plan.ruleset).toContain("ip daddr 203.0.113.5 udp dport 51820 accept");
      // Nothing else is allowed out to any address: no TCP to the shield's public address, no other UDP.
      const output = plan.ruleset.slice(
        plan.ruleset.indexOf("chain output"),
        plan.ruleset.indexOf("chain forward"),
      );
      expect(
        output
          .split("\n")
          .filter((l) => /daddr \S+ (tcp|udp) dport/.test(l))
          .map((l) => l.trim().split(" accept")[0]),
      ).toEqual(['oifname "cg0" ip daddr 10.77.0.1 tcp dport 3128', "ip daddr 203.0.113.5 udp dport 51820"]);
      const conf = plan.files.find((f) => f.path === "/etc/wireguard/cg0.conf")!;
      expect(conf.mode).toBe(0o600);
      expect(conf.content).toContain(`PrivateKey = ${agentKey.privateKey}`);
      expect(conf.content).toContain("Endpoint = 203.0.113.5:51820");
      expect(conf.content).toContain("AllowedIPs = 10.77.0.1/32, fd77:77::1/128");
      expect(conf.content).toContain("Address = 10.77.0.2/32, fd77:77::2/128");
      // What a person sees of the plan never shows the key.
      expect(conf.diff).not.toContain(agentKey.privateKey);
      expect(JSON.stringify(shownPlan(plan))).not.toContain(agentKey.privateKey);
      expect(plan.links.map((l) => [l.path, l.target])).toContainEqual([
        "/etc/systemd/system/multi-user.target.wants/wg-quick@cg0.service",
        "/lib/systemd/system/wg-quick@.service",
      ]);
      const dropin = plan.files.find((f) => f.path.endsWith("50-clawguard-egress.conf"))!.content;
      expect(dropin).toContain("Environment=HTTPS_PROXY=http://10.77.0.1:3128");
      expect(dropin).not.toMatch(/@|token/i);
      expect(plan.tunnel).toEqual({
        interface: "cg0",
        endpoint: { host: "203.0.113.5", port: 51820, addresses: ["203.0.113.5"] },
        shieldPublicKey: shieldKey.publicKey,
        config: "/etc/wireguard/cg0.conf",
      });
    },
    SLOW,
  );

  it(
    "writes the config 0600 and the boot link, records the tunnel, and rollback removes them",
    async () => {
      const root = makeTree();
      const host = new LocalHost(root);
      const j = await prepareJoin(host, { code: code(), nowSeconds: NOW, iface: "cg0", keyFile: "/x" });
      const plan = await planLockdown(host, { ...base, shield: j.shield, tunnel: j.tunnel });
      await applyLockdown(host, new LocalWriter(host), plan, filesOnly);
      expect(statSync(path.join(root, "etc/wireguard/cg0.conf")).mode & 0o777).toBe(0o600);
      expect(
        readlinkSync(path.join(root, "etc/systemd/system/multi-user.target.wants/wg-quick@cg0.service")),
      ).toBe("/lib/systemd/system/wg-quick@.service");
      expect((await recordedShield(host))?.tunnel?.interface).toBe("cg0");
      await rollbackLockdown(host, new LocalWriter(host), filesOnly);
      expect(existsSync(path.join(root, "etc/wireguard/cg0.conf"))).toBe(false);
      expect(() =>
        lstatSync(path.join(root, "etc/systemd/system/multi-user.target.wants/wg-quick@cg0.service")),
      ).toThrow();
    },
    SLOW,
  );

  it(
    "installs the fleet's SSH CA the code carries as harden does, lets the KRL through the tunnel only, and rollback removes it",
    async () => {
      const uid = process.getuid?.() ?? 0;
      const gid = process.getgid?.() ?? 0;
      // deploy can log in; no account has a key, so a grant without --as opens none.
      const root = makeTree({
        "etc/passwd": [
          `root:x:0:0:root:/root:/bin/bash\nopenclaw:x:${uid}:${gid}::/home/openclaw:/usr/sbin/nologin\ndeploy:x:1001:1001::/home/deploy:/bin/bash\n`,
          0o644,
        ],
      });
      const host = new LocalHost(root);
      const krl = "http://10.77.0.1:3129/ssh/krl";
      const j = await prepareJoin(host, {
        code: code({ sshCa: CA, krl }),
        nowSeconds: NOW,
        iface: "cg0",
        keyFile: "/x",
      });
      expect(j.sshCa).toEqual({ publicKey: CA, agent: "scout", krlUrl: krl });
      const plan = await planLockdown(host, {
        ...base,
        shield: j.shield,
        tunnel: j.tunnel,
        sshCa: { ...j.sshCa!, launcher: ["/usr/bin/node", "/opt/cg/bin/clawguard.js"] },
      });
      expect(plan.ruleset).toContain('oifname "cg0" ip daddr 10.77.0.1 tcp dport 3129 accept');
      // Validated and reloaded by sshd, then the timer started, as harden plans it.
      expect(plan.sshCa.map((c) => (c.kind === "command" ? c.argv.join(" ") : c.kind))).toEqual(
        expect.arrayContaining(["sshd -t", "systemctl reload ssh.service", "service"]),
      );
      await applyLockdown(host, new LocalWriter(host), plan, filesOnly);
      expect(read(root, "etc/ssh/clawguard/fleet-ca.pub")).toBe(CA + "\n");
      expect(readdirSync(path.join(root, "etc/ssh/clawguard/principals"))).toEqual(["deploy"]);
      expect(read(root, "etc/ssh/clawguard/principals/deploy")).toMatch(/^agent-scout:deploy$/m);
      expect(read(root, "etc/ssh/clawguard/principals/deploy")).not.toMatch(/^agent-scout$/m);
      expect(read(root, "etc/ssh/sshd_config.d/40-clawguard-ca.conf")).toMatch(/^RevokedKeys /m);
      expect(read(root, "etc/systemd/system/clawguard-krl-fetch.service")).toContain(
        `fetch-krl --from ${krl}`,
      );
      await rollbackLockdown(host, new LocalWriter(host), filesOnly);
      for (const p of [
        "etc/ssh/clawguard/fleet-ca.pub",
        "etc/ssh/clawguard/principals",
        "etc/systemd/system/clawguard-krl-fetch.service",
      ])
        expect(existsSync(path.join(root, p)), p).toBe(false);
    },
    SLOW,
  );

  it("makes and reads no code whose CA is no public key, or whose KRL is off the shield's tunnel", () => {
    // The encoder checks what the decoder checks: such a code is never printed, nor read.
    expect(() => code({ sshCa: "-----BEGIN OPENSSH PRIVATE KEY-----" })).toThrow(
      /sshCa is not one SSH public key/,
    );
    expect(() => code({ sshCa: CA, krl: "http://203.0.113.9:3129/ssh/krl" })).toThrow(
      /not a URL on the shield's tunnel/,
    );
  });

  it("refuses a damaged or expired code, or one without a key when there is no key here", async () => {
    const root = makeTree();
    const host = new LocalHost(root);
    const join = (c: string) =>
      prepareJoin(host, { code: c, nowSeconds: NOW, iface: "cg0", keyFile: "/etc/clawguard/wireguard.key" });
    await expect(join(code().slice(0, -3))).rejects.toMatchObject({ code: "CG_JOIN_CODE_INVALID" });
    await expect(join(code({ expires: NOW - 1 }))).rejects.toMatchObject({ code: "CG_JOIN_CODE_EXPIRED" });
    const keyless = code({ privateKey: undefined });
    await expect(join(keyless)).rejects.toThrow(/carries no private key .* run clawguard lockdown keygen/);
    // With the key keygen made, the same code joins.
    const made = await keygen(host, new LocalWriter(host), "/etc/clawguard/wireguard.key", false);
    expect(statSync(path.join(root, "etc/clawguard/wireguard.key")).mode & 0o777).toBe(0o600);
    const j = await join(keyless);
    expect(j.tunnel.conf).toContain(`PrivateKey = ${read(root, "etc/clawguard/wireguard.key").trim()}`);
    expect(publicKeyOf(read(root, "etc/clawguard/wireguard.key").trim())).toBe(made.publicKey);
    // keygen never replaces a key without --force.
    expect((await keygen(host, new LocalWriter(host), "/etc/clawguard/wireguard.key", false)).created).toBe(
      false,
    );
    writeFileSync(path.join(root, "etc/clawguard/other.key"), "junk\n");
    await expect(keygen(host, new LocalWriter(host), "/etc/clawguard/other.key", false)).rejects.toThrow(
      /holds no WireGuard key/,
    );
  });
});
