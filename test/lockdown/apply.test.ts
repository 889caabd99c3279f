import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { applyLockdown, rollbackLockdown } from "../../src/lockdown/apply.js";
import { planLockdown, type PlanInput } from "../../src/lockdown/plan.js";
import { makeTree, read } from "./tree.js";

const input: PlanInput = {
  shield: { host: "10.0.0.2", port: 3128, addresses: ["10.0.0.2"], pinned: false },
  allowOut: [],
  dns: [],
  dhcp: false,
  log: true,
  forward: true,
  backend: "nft",
};
const filesOnly = { live: false, systemd: false } as const;
// Fact gathering reads a whole tree; on a loaded two-core machine that takes seconds.
const SLOW = 60_000;
const DROPIN = "etc/systemd/system/openclaw-gateway.service.d/50-clawguard-egress.conf";
const WANTS = "etc/systemd/system/multi-user.target.wants/clawguard-lockdown.service";

function snapshot(root: string, p: string) {
  const abs = path.join(root, p);
  return { bytes: readFileSync(abs).toString("base64"), mode: statSync(abs).mode & 0o7777 };
}

describe("lockdown plan", () => {
  it(
    "uses sshd's real port, finds the gateway unit and changes nothing",
    async () => {
      const root = makeTree();
      const plan = await planLockdown(new LocalHost(root), input);
      expect(plan.sshPorts.ports).toEqual([2222]);
      expect(plan.ruleset).toContain("tcp sport { 2222 }");
      expect(plan.gatewayUnits).toEqual(["openclaw-gateway.service"]);
      expect(plan.files.map((f) => f.path)).toEqual([
        "/etc/clawguard/lockdown.nft",
        "/etc/systemd/system/clawguard-lockdown.service",
        "/" + DROPIN,
      ]);
      expect(plan.files[0]!.diff).toMatch(/^--- \/dev\/null\n\+\+\+ \/etc\/clawguard\/lockdown.nft\n/);
      expect(plan.notes.join("\n")).toMatch(/apt is not allowed out directly/);
      expect(existsSync(path.join(root, "etc/clawguard"))).toBe(false);
    },
    SLOW,
  );

  it(
    "falls back to port 22 with a warning when sshd's settings cannot be read, and says when no gateway exists",
    async () => {
      const root = makeTree({ "etc/ssh/sshd_config": ["", 0o644] });
      const { rmSync } = await import("node:fs");
      rmSync(path.join(root, "etc/ssh"), { recursive: true });
      rmSync(path.join(root, "etc/systemd"), { recursive: true });
      const plan = await planLockdown(new LocalHost(root), input);
      expect(plan.sshPorts.ports).toEqual([22]);
      expect(plan.warnings.join("\n")).toMatch(/sshd's ports could not be read .*assuming 22.*--ssh-port/);
      expect(plan.gatewayUnits).toEqual([]);
      expect(plan.gatewaySkipped).toMatch(/no OpenClaw gateway unit found/);
    },
    SLOW,
  );
});

describe("lockdown apply and rollback of files", () => {
  it(
    "writes the ruleset, the unit, its wants link and the gateway drop-in",
    async () => {
      const root = makeTree();
      const host = new LocalHost(root);
      const report = await applyLockdown(
        host,
        new LocalWriter(host),
        await planLockdown(host, input),
        filesOnly,
      );
      expect(report.written).toHaveLength(4);
      expect(read(root, "etc/clawguard/lockdown.nft")).toContain("ip daddr 10.0.0.2 tcp dport 3128 accept");
      expect(statSync(path.join(root, "etc/clawguard/lockdown.nft")).mode & 0o777).toBe(0o644);
      const unit = read(root, "etc/systemd/system/clawguard-lockdown.service");
      for (const line of [
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/sbin/nft -f /etc/clawguard/lockdown.nft",
        "ExecStop=/usr/sbin/nft delete table inet clawguard_egress",
        "DefaultDependencies=no",
        "Before=network-pre.target",
        "Wants=network-pre.target",
        "WantedBy=multi-user.target",
      ])
        expect(unit.split("\n")).toContain(line);
      expect(readlinkSync(path.join(root, WANTS))).toBe("/etc/systemd/system/clawguard-lockdown.service");
      const dropin = read(root, DROPIN).split("\n");
      for (const line of [
        "Environment=OPENCLAW_PROXY_URL=http://10.0.0.2:3128",
        "Environment=HTTPS_PROXY=http://10.0.0.2:3128",
        "Environment=HTTP_PROXY=http://10.0.0.2:3128",
        "Environment=NO_PROXY=localhost,127.0.0.1,::1",
        "IPAddressDeny=any",
        "IPAddressAllow=localhost",
        "IPAddressAllow=10.0.0.2",
      ])
        expect(dropin).toContain(line);
      // The backups of what it replaced are root's business only.
      expect(statSync(path.join(root, "var/lib/clawguard/runs", report.runId!)).mode & 0o777).toBe(0o700);
    },
    SLOW,
  );

  it(
    "puts back what it replaced byte for byte, with its mode, even after applying twice",
    async () => {
      const root = makeTree({
        "etc/clawguard/lockdown.nft": ["# the operator's own rules\nflush ruleset\n", 0o640],
        [DROPIN]: ["[Service]\nEnvironment=KEEP=me\n", 0o600],
      });
      const host = new LocalHost(root);
      const before = {
        nft: snapshot(root, "etc/clawguard/lockdown.nft"),
        dropin: snapshot(root, DROPIN),
        gateway: snapshot(root, "etc/systemd/system/openclaw-gateway.service"),
      };
      const writer = new LocalWriter(host);
      await applyLockdown(host, writer, await planLockdown(host, input), filesOnly);
      const v6 = { ...input, shield: { host: "fd00::2", port: 3128, addresses: ["fd00::2"], pinned: false } };
      const second = await applyLockdown(host, writer, await planLockdown(host, v6), filesOnly);
      expect(second.written).toContain("/etc/clawguard/lockdown.nft");
      expect(read(root, DROPIN)).toContain("Environment=HTTPS_PROXY=http://[fd00::2]:3128");
      const third = await applyLockdown(host, writer, await planLockdown(host, v6), filesOnly);
      expect(third.written).toEqual([]);

      const rb = await rollbackLockdown(host, writer, filesOnly);
      expect(rb.problems).toEqual([]);
      expect(snapshot(root, "etc/clawguard/lockdown.nft")).toEqual(before.nft);
      expect(snapshot(root, DROPIN)).toEqual(before.dropin);
      expect(snapshot(root, "etc/systemd/system/openclaw-gateway.service")).toEqual(before.gateway);
      expect(existsSync(path.join(root, "etc/systemd/system/clawguard-lockdown.service"))).toBe(false);
      expect(() => lstatSync(path.join(root, WANTS))).toThrow();
      expect(existsSync(path.join(root, "etc/systemd/system/multi-user.target.wants"))).toBe(false);
      expect(existsSync(path.join(root, "var/lib/clawguard/lockdown"))).toBe(false);
      expect(rb.restored.map((r) => `${r.to} ${r.path}`)).toEqual([
        "file /etc/clawguard/lockdown.nft",
        "absent /etc/systemd/system/clawguard-lockdown.service",
        "file /" + DROPIN,
        "absent /" + WANTS,
      ]);
    },
    SLOW,
  );

  it(
    "restores a wants link that pointed elsewhere",
    async () => {
      const root = makeTree();
      const { mkdirSync, symlinkSync } = await import("node:fs");
      mkdirSync(path.dirname(path.join(root, WANTS)), { recursive: true });
      symlinkSync("/dev/null", path.join(root, WANTS));
      const host = new LocalHost(root);
      const writer = new LocalWriter(host);
      await applyLockdown(host, writer, await planLockdown(host, input), filesOnly);
      expect(readlinkSync(path.join(root, WANTS))).toBe("/etc/systemd/system/clawguard-lockdown.service");
      await rollbackLockdown(host, writer, filesOnly);
      expect(readlinkSync(path.join(root, WANTS))).toBe("/dev/null");
    },
    SLOW,
  );

  it(
    "refuses to replace a directory where its file goes, and changes nothing",
    async () => {
      const root = makeTree();
      const { mkdirSync } = await import("node:fs");
      mkdirSync(path.join(root, "etc/clawguard/lockdown.nft"), { recursive: true });
      await expect(planLockdown(new LocalHost(root), input)).rejects.toThrow(
        /\/etc\/clawguard\/lockdown.nft: is a dir, not a file; move it away/,
      );
    },
    SLOW,
  );
});
