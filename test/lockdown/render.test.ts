import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { summarizeNft } from "../../src/facts/lockdown.js";
import { runCommand } from "../../src/host/host.js";
import { renderIptablesRules, renderNftRuleset, type EgressSpec } from "../../src/render/nftables.js";
import { LockdownInputError, parseAllowOut, parseHostPort, pinShield } from "../../src/lockdown/spec.js";

const base: EgressSpec = {
  shield: { addresses: ["10.0.0.2"], port: 3128, label: "10.0.0.2:3128" },
  sshPorts: [22],
  allowOut: [],
  dns: [],
  dhcp: false,
  log: true,
  forward: false,
};

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-nft-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A private user and network namespace: real nft, no root needed, nothing outside touched. */
async function inPrivateNetns(script: string) {
  return runCommand(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script], {
    timeoutMs: 15_000,
  });
}
const netnsWorks =
  (
    await runCommand(["unshare", "--user", "--map-root-user", "--net", "nft", "--version"]).catch(() => ({
      code: 1,
    }))
  ).code === 0;

describe("nftables ruleset", () => {
  it("drops everything on output except loopback, replies, SSH replies, the shield and neighbour discovery", () => {
    expect(renderNftRuleset(base)).toBe(`#!/usr/sbin/nft -f
# clawguard lockdown: nothing leaves this server except through the shield 10.0.0.2:3128.
# Written by clawguard lockdown; \`clawguard lockdown rollback\` removes it.
table inet clawguard_egress {}
delete table inet clawguard_egress
table inet clawguard_egress {
\tchain output {
\t\ttype filter hook output priority 0; policy drop;
\t\toif "lo" accept
\t\tct state established,related accept
\t\ttcp sport { 22 } tcp flags & (syn | ack) != syn accept comment "replies of the operator's SSH"
\t\tip daddr 10.0.0.2 tcp dport 3128 accept comment "the shield 10.0.0.2:3128"
\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept comment "IPv6 neighbour discovery on the link"
\t\tip6 daddr ff02::/16 icmpv6 type { mld-listener-report, mld2-listener-report } accept comment "multicast listener reports that neighbour discovery relies on"
\t\tlimit rate 10/minute burst 5 packets log prefix "clawguard-egress-drop " level warn
\t\tcounter drop comment "everything else: IPv4 and IPv6, TCP, UDP and DNS"
\t}
}
`);
  });

  it("allows an IPv6 shield with ip6, and several SSH ports", () => {
    const text = renderNftRuleset({
      ...base,
      shield: { addresses: ["fd00:77::2"], port: 8443, label: "[fd00:77::2]:8443" },
      sshPorts: [22, 2222],
    });
    expect(text).toContain(`ip6 daddr fd00:77::2 tcp dport 8443 accept`);
    expect(text).not.toMatch(/\bip daddr/);
    expect(text).toContain("tcp sport { 22, 2222 }");
  });

  it("has no DNS rule unless a resolver is allowed, then UDP and TCP 53 to it only", () => {
    expect(renderNftRuleset(base)).not.toMatch(/dport 53\b/);
    const text = renderNftRuleset({ ...base, dns: ["10.1.1.1"] });
    expect(text).toContain("ip daddr 10.1.1.1 udp dport 53 accept");
    expect(text).toContain("ip daddr 10.1.1.1 tcp dport 53 accept");
    expect(text.match(/dport 53/g)).toHaveLength(2);
  });

  it("adds operator-approved destinations, DHCP on request, and leaves logging out with log off", () => {
    const text = renderNftRuleset({
      ...base,
      allowOut: [parseAllowOut("203.0.113.0/24:80"), parseAllowOut("[2001:db8::/32]:123/udp")],
      dhcp: true,
      log: false,
    });
    expect(text).toContain("ip daddr 203.0.113.0/24 tcp dport 80 accept");
    expect(text).toContain("ip6 daddr 2001:db8::/32 udp dport 123 accept");
    expect(text).toContain("udp sport 68 udp dport 67 accept");
    expect(text).toContain("udp sport 546 udp dport 547 accept");
    expect(text).not.toContain(" log ");
    expect(text).toMatch(/counter drop/);
  });

  it("pins every address of a shield given by name", async () => {
    const pinned = await pinShield(parseHostPort("shield.example:3128", "--shield"), async () => [
      "10.0.0.2",
      "fd00::2",
      "10.0.0.2",
    ]);
    expect(pinned).toEqual({
      host: "shield.example",
      port: 3128,
      addresses: ["10.0.0.2", "fd00::2"],
      pinned: true,
    });
    const text = renderNftRuleset({
      ...base,
      shield: { addresses: pinned.addresses, port: 3128, label: "x" },
    });
    expect(text).toContain("ip daddr 10.0.0.2 tcp dport 3128 accept");
    expect(text).toContain("ip6 daddr fd00::2 tcp dport 3128 accept");
    await expect(
      pinShield({ host: "nowhere.invalid", port: 1 }, async () => {
        throw new Error("ENOTFOUND");
      }),
    ).rejects.toThrow(/cannot resolve "nowhere.invalid".*give the shield's IP address/);
  });

  it("holds traffic routed out of local containers to the same rules, and lets traffic into them pass", () => {
    const text = renderNftRuleset({ ...base, forward: true });
    const forward = text.slice(text.indexOf("\tchain forward {"));
    expect(forward).toContain("type filter hook forward priority 0; policy drop;");
    expect(forward).toContain('oifname { "docker0", "br-*", "virbr*", "lxcbr*" } accept');
    expect(forward).toContain("ip daddr 10.0.0.2 tcp dport 3128 accept");
    expect(forward).toMatch(/counter drop comment "routed out of local containers and VMs"\n\t}\n}\n$/);
    expect(forward).not.toContain("sport");
    expect(renderNftRuleset(base)).not.toContain("hook forward");
  });

  it("is what the audit's egress layer recognises", () => {
    expect(summarizeNft(renderNftRuleset(base))).toEqual({ hasTable: true, dropsOutput: true });
  });

  it.runIf(netnsWorks)("loads into the real nft, twice, as one table with the same rules", async () => {
    const file = path.join(dir, "v6.nft");
    writeFileSync(
      file,
      renderNftRuleset({
        ...base,
        shield: { addresses: ["10.0.0.2", "fd00::2"], port: 3128, label: "s" },
        sshPorts: [22, 2222],
        allowOut: [parseAllowOut("[2001:db8::/32]:443")],
        dns: ["fd00::53"],
        dhcp: true,
        forward: true,
      }),
    );
    const r = await inPrivateNetns(`nft -f '${file}' && nft -f '${file}' && nft list ruleset`);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.match(/table inet clawguard_egress/g)).toHaveLength(1);
    expect(r.stdout.match(/hook output/g)).toHaveLength(1);
    expect(r.stdout.match(/hook forward/g)).toHaveLength(1);
    expect(r.stdout).toContain("policy drop;");
    expect(r.stdout).toContain("ip6 daddr fd00::2 tcp dport 3128 accept");
    expect(summarizeNft(r.stdout)).toEqual({ hasTable: true, dropsOutput: true });
  });
});

describe("iptables fallback", () => {
  it("puts the same rules in a chain of its own per family, ending in DROP", () => {
    const spec = { ...base, shield: { addresses: ["10.0.0.2", "fd00::2"], port: 3128, label: "s" } };
    const v4 = renderIptablesRules(spec, 4);
    const v6 = renderIptablesRules(spec, 6);
    expect(v4).toContain(":CLAWGUARD-EGRESS - [0:0]");
    expect(v4).toContain("-A CLAWGUARD-EGRESS -d 10.0.0.2/32 -p tcp -m tcp --dport 3128");
    expect(v4).not.toContain("fd00::2");
    expect(v6).toContain("-A CLAWGUARD-EGRESS -d fd00::2/128 -p tcp -m tcp --dport 3128");
    expect(v6).toContain("--icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -j ACCEPT");
    expect(v6).not.toContain("10.0.0.2");
    for (const t of [v4, v6]) {
      expect(t).toContain("-I OUTPUT 1 -j CLAWGUARD-EGRESS");
      expect(t.trimEnd().split("\n").slice(-3)[0]).toBe("-A CLAWGUARD-EGRESS -j DROP");
    }
  });
});

describe("flags", () => {
  it("explains what is wrong with a destination", () => {
    expect(() => parseHostPort("fd00::2:3128", "--shield")).toThrow(
      /IPv6 literals must be written in brackets/,
    );
    expect(() => parseHostPort("shield:0", "--shield")).toThrow(/port 0 is out of range 1-65535/);
    expect(parseHostPort("[fd00::2]:3128", "--shield")).toEqual({ host: "fd00::2", port: 3128 });
    expect(() => parseAllowOut("10.0.0.0/33:443")).toThrow(LockdownInputError);
    expect(() => parseAllowOut("mirror.example:80")).toThrow(/not an IP address or CIDR/);
  });
});
