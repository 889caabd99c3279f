import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCommand } from "../../src/host/host.js";
import { makeTree } from "./tree.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const cli = (args: string[]) => runCommand([process.execPath, BIN, ...args], { timeoutMs: 60_000 });

// The live half runs in a private user and network namespace: the real nft and kernel, no root
// needed, and nothing outside the namespace is touched.
const netnsWorks =
  (
    await runCommand(["unshare", "--user", "--map-root-user", "--net", "nft", "--version"]).catch(() => ({
      code: 1,
    }))
  ).code === 0;

const iptablesWorks =
  netnsWorks &&
  (
    await runCommand(["unshare", "--user", "--map-root-user", "--net", "iptables", "-S"]).catch(() => ({
      code: 1,
    }))
  ).code === 0;

// Each run starts a Node process; on a loaded two-core machine that takes seconds.
const SLOW = 90_000;

describe("clawguard lockdown", () => {
  it(
    "prints the plan without changing anything, and its JSON twin",
    async () => {
      const root = makeTree();
      const text = await cli(["lockdown", "--shield", "[fd00::2]:3128", "--root", root]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain("+\t\tip6 daddr fd00::2 tcp dport 3128 accept");
      expect(text.stdout).toContain("openclaw-gateway.service gets the proxy drop-in");
      expect(text.stdout).toContain("Nothing was changed");
      const json = await cli(["lockdown", "--shield", "[fd00::2]:3128", "--root", root, "--json"]);
      const plan = JSON.parse(json.stdout) as {
        schema: string;
        shield: { proxyUrl: string };
        sshPorts: { ports: number[] };
      };
      expect(plan.schema).toBe("clawguard.lockdown-plan/v1");
      expect(plan.shield.proxyUrl).toBe("http://[fd00::2]:3128");
      expect(plan.sshPorts.ports).toEqual([2222]);
    },
    SLOW,
  );

  it(
    "exits 2 with what to type when a flag cannot be right",
    async () => {
      const r = await cli(["lockdown", "--shield", "fd00::2:3128", "--root", makeTree()]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--shield: "fd00::2:3128": IPv6 literals must be written in brackets/);
      const none = await cli(["lockdown", "--root", makeTree()]);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/--shield HOST:PORT is required/);
      const verify = await cli(["lockdown", "--verify", "--root", makeTree()]);
      expect(verify.code).toBe(2);
      expect(verify.stderr).toMatch(/--verify needs --shield HOST:PORT \(no lockdown state recorded here\)/);
      const both = await cli([
        "lockdown",
        "--shield",
        "10.0.0.2:3128",
        "--apply",
        "--verify",
        "--root",
        makeTree(),
      ]);
      expect(both.code).toBe(2);
    },
    SLOW,
  );

  it.runIf(netnsWorks)(
    "with --root writes the files and loads nothing into the machine it runs on",
    async () => {
      const root = makeTree();
      const cg = `'${process.execPath}' '${BIN}'`;
      const script = [
        `${cg} lockdown --shield 10.0.0.2:3128 --root '${root}' --apply --json > '${root}/apply.json'`,
        "echo apply=$?",
        "nft list tables | wc -l",
        `${cg} lockdown rollback --root '${root}' --json > /dev/null`,
        "echo rollback=$?",
      ].join("; ");
      // In a namespace of its own, so that a lockdown loaded by mistake cuts off nothing real.
      const r = await runCommand(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script], {
        timeoutMs: 80_000,
      });
      expect(r.stdout.split("\n"), r.stderr).toEqual(["apply=0", "0", "rollback=0", ""]);
      const applied = JSON.parse(readFileSync(path.join(root, "apply.json"), "utf8")) as {
        steps: unknown[];
        written: string[];
      };
      expect(applied.steps).toEqual([]);
      expect(applied.written).toContain("/etc/clawguard/lockdown.nft");
    },
    SLOW,
  );

  it.runIf(netnsWorks)(
    "applies the live table and removes it again, files included",
    async () => {
      const root = makeTree();
      const cg = `'${process.execPath}' '${BIN}'`;
      const script = [
        `${cg} lockdown --shield 10.0.0.2:3128 --root '${root}' --load --apply --json > '${root}/apply.json'`,
        "echo apply=$?",
        "nft list table inet clawguard_egress | grep -c 'hook output priority filter; policy drop'",
        `${cg} lockdown --shield 10.0.0.2:3128 --root '${root}' --load --apply > /dev/null`,
        "nft list tables",
        `${cg} lockdown rollback --root '${root}' --load --json > '${root}/rollback.json'`,
        "echo rollback=$?",
        "nft list tables | wc -l",
      ].join("; ");
      const r = await runCommand(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script], {
        timeoutMs: 80_000,
      });
      expect(r.stdout.split("\n"), r.stderr).toEqual([
        "apply=0",
        "1",
        "table inet clawguard_egress",
        "rollback=0",
        "0",
        "",
      ]);
      const applied = JSON.parse(readFileSync(path.join(root, "apply.json"), "utf8")) as {
        steps: Array<{ command: string; ok: boolean }>;
      };
      expect(applied.steps.map((s) => s.command)).toEqual([
        `nft -f ${root}/etc/clawguard/lockdown.nft`,
        "nft list table inet clawguard_egress",
      ]);
      const rb = JSON.parse(readFileSync(path.join(root, "rollback.json"), "utf8")) as {
        restored: unknown[];
        problems: string[];
      };
      expect(rb.problems).toEqual([]);
      expect(rb.restored).toHaveLength(4);
    },
    SLOW,
  );

  it.runIf(netnsWorks)(
    "clawguard rollback of the latest apply leaves the one before it in force, rules included",
    async () => {
      const root = makeTree();
      const cg = `'${process.execPath}' '${BIN}'`;
      const apply = (shield: string) =>
        `${cg} lockdown --shield ${shield} --root '${root}' --load --apply > /dev/null`;
      const script = [
        apply("10.0.0.2:3128"),
        apply("10.0.0.3:3128"),
        `${cg} rollback --list --root '${root}' | grep -c ' lockdown '`,
        `${cg} rollback --root '${root}' --load > /dev/null`,
        "echo rollback=$?",
        "nft list table inet clawguard_egress > t.txt; grep -q 'ip daddr 10.0.0.2 tcp dport 3128' t.txt && echo table=first",
        "grep -q 10.0.0.3 t.txt || echo table-not-second",
        `grep -q 'daddr 10.0.0.2 ' '${root}/etc/clawguard/lockdown.nft' && echo file=first`,
        `${cg} lockdown rollback --root '${root}' --load > /dev/null`,
        "echo lockdown-rollback=$?",
        "nft list tables | wc -l",
      ].join("; ");
      const r = await runCommand(
        ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", `cd '${root}'; ${script}`],
        {
          timeoutMs: 80_000,
        },
      );
      expect(r.stdout.split("\n"), r.stderr).toEqual([
        "2",
        "rollback=0",
        "table=first",
        "table-not-second",
        "file=first",
        "lockdown-rollback=0",
        "0",
        "",
      ]);
    },
    SLOW,
  );

  it.runIf(iptablesWorks)(
    "falls back to a chain of its own in iptables and ip6tables, jumped to once however often applied",
    async () => {
      const root = makeTree();
      const cg = `'${process.execPath}' '${BIN}'`;
      const apply = `${cg} lockdown --shield 10.0.0.2:3128 --root '${root}' --load --apply --backend iptables > /dev/null`;
      const script = [
        apply,
        "echo apply=$?",
        apply,
        "iptables -S OUTPUT | grep -c CLAWGUARD-EGRESS",
        "ip6tables -S OUTPUT | grep -c CLAWGUARD-EGRESS",
        "iptables -S CLAWGUARD-EGRESS | grep -c -- '-d 10.0.0.2/32 -p tcp -m tcp --dport 3128'",
        "iptables -S CLAWGUARD-EGRESS | tail -n 1",
        "ip6tables -S CLAWGUARD-EGRESS | tail -n 1",
        `${cg} lockdown rollback --root '${root}' --load > /dev/null`,
        "echo rollback=$?",
        "iptables -S | grep -c CLAWGUARD",
        "ip6tables -S | grep -c CLAWGUARD",
      ].join("; ");
      const r = await runCommand(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script], {
        timeoutMs: 80_000,
      });
      expect(r.stdout.split("\n"), r.stderr).toEqual([
        "apply=0",
        "1",
        "1",
        "1",
        "-A CLAWGUARD-EGRESS -j DROP",
        "-A CLAWGUARD-EGRESS -j DROP",
        "rollback=0",
        "0",
        "0",
        "",
      ]);
      expect(existsSync(path.join(root, "etc/clawguard/lockdown.v6.rules"))).toBe(false);
    },
    SLOW,
  );
});
