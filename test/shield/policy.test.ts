import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { parseShieldConfig } from "../../src/shield/config.js";
import { Policy, parseTarget } from "../../src/shield/policy/index.js";
import type { Agent, Decision } from "../../src/shield/types.js";
import { EXAMPLE, SCOUT_TOKEN } from "./policy-fixtures.js";

const SELF = { endpoints: [{ host: "127.0.0.1", port: 3128 }] };

function compile(yaml: string, self = SELF): Policy {
  return Policy.compile(parseShieldConfig(yaml, "shield.yaml"), self);
}

function sha(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

const BASE = "listen: 127.0.0.1:3128\nlog: { path: /tmp/shield.db }\n";

function decide(p: Policy, agentId: string, authority: string): Decision {
  const agent = p.agent(agentId);
  if (agent === null) throw new Error(`no agent ${agentId}`);
  return p.decide(agent, parseTarget(authority, 443));
}

function verdict(p: Policy, agentId: string, authority: string): string {
  const d = decide(p, agentId, authority);
  return d.audited ? "audited" : d.verdict;
}

function check(p: Policy, agentId: string, address: string, port = 443): Decision {
  return p.checkAddress(p.agent(agentId) as Agent, { host: "name.example", port }, address);
}

describe("identify", () => {
  const p = compile(EXAMPLE);

  it("identifies a token agent by user name and token, from any source", () => {
    expect(p.identify("203.0.113.5", { user: "scout", pass: SCOUT_TOKEN })).toEqual({
      id: "scout",
      fleet: "acme",
      tier: "crew",
    });
    expect(p.identify("::ffff:10.1.2.3", { user: "scout", pass: SCOUT_TOKEN })?.id).toBe("scout");
  });

  it("refuses a wrong token, an empty or huge one, another agent's name, and no credentials", () => {
    expect(p.identify("10.0.0.9", { user: "scout", pass: `${SCOUT_TOKEN}x` })).toBeNull();
    expect(p.identify("10.0.0.9", { user: "scout", pass: "" })).toBeNull();
    expect(p.identify("10.0.0.9", { user: "scout", pass: "x".repeat(100_000) })).toBeNull();
    expect(p.identify("10.0.0.9", { user: "admiral", pass: SCOUT_TOKEN })).toBeNull();
    expect(p.identify("10.0.0.9", { user: "nobody", pass: SCOUT_TOKEN })).toBeNull();
    expect(p.identify("10.0.0.9")).toBeNull();
  });

  it("identifies a source agent by address alone, in any spelling a socket reports", () => {
    expect(p.identify("127.0.0.2")?.id).toBe("admiral");
    expect(p.identify("::ffff:127.0.0.2")?.id).toBe("admiral");
    expect(p.identify("127.0.0.3")).toBeNull();
    expect(p.identify("not-an-address")).toBeNull();
    // Credentials naming a source agent change nothing: the address still decides.
    expect(p.identify("127.0.0.2", { user: "admiral", pass: "whatever" })?.id).toBe("admiral");
    expect(p.identify("127.0.0.9", { user: "admiral", pass: "whatever" })).toBeNull();
  });

  it("needs both token and source for an agent that has both", () => {
    const both = compile(
      `${BASE}agents:\n  - { id: a, token_sha256: "${sha("tok")}", sources: [10.5.0.0/16, "fd00:5::/32"] }\n`,
    );
    expect(both.identify("10.5.9.9", { user: "a", pass: "tok" })?.id).toBe("a");
    expect(both.identify("fd00:5::7", { user: "a", pass: "tok" })?.id).toBe("a");
    expect(both.identify("10.6.0.1", { user: "a", pass: "tok" })).toBeNull();
    expect(both.identify("10.5.9.9", { user: "a", pass: "bad" })).toBeNull();
    // A token agent is never picked by its source range alone.
    expect(both.identify("10.5.9.9")).toBeNull();
  });

  it("picks the most specific source range", () => {
    const p2 = compile(
      `${BASE}agents:\n  - { id: wide, sources: [10.0.0.0/8] }\n  - { id: narrow, sources: [10.1.0.0/16] }\n  - { id: v6, sources: ["fd00::/8"] }\n`,
    );
    expect(p2.identify("10.1.2.3")?.id).toBe("narrow");
    expect(p2.identify("10.2.2.3")?.id).toBe("wide");
    expect(p2.identify("fd00::1")?.id).toBe("v6");
    expect(p2.identify("fe80::1%eth0")).toBeNull();
  });
});

describe("decide", () => {
  const p = compile(EXAMPLE);

  it("allows what the tier allows and names the rule", () => {
    expect(decide(p, "scout", "api.openai.com:443")).toEqual({
      verdict: "allow",
      audited: false,
      mode: "enforce",
      rule: "tier:crew allow api.openai.com",
      reason: "matched tier:crew allow api.openai.com",
    });
    expect(decide(p, "scout", "api.openai.com:8080").verdict).toBe("allow");
    expect(decide(p, "scout", "API.OpenAI.com.").verdict).toBe("allow");
  });

  it("matches wildcards below the domain at any depth, never the domain itself", () => {
    expect(verdict(p, "scout", "claude.anthropic.com:443")).toBe("allow");
    expect(verdict(p, "scout", "a.b.anthropic.com:443")).toBe("allow");
    expect(verdict(p, "scout", "anthropic.com:443")).toBe("deny");
    expect(verdict(p, "scout", "evilanthropic.com:443")).toBe("deny");
    expect(verdict(p, "scout", "anthropic.com.evil.net:443")).toBe("deny");
  });

  it("holds a rule's port and leaves a portless rule open on every port", () => {
    expect(verdict(p, "scout", "claude.anthropic.com:80")).toBe("deny");
    expect(verdict(p, "admiral", "claude.anthropic.com:80")).toBe("allow");
  });

  it("denies by default, with no rule named", () => {
    const d = decide(p, "scout", "example.com:443");
    expect(d).toMatchObject({ verdict: "deny", audited: false, rule: null });
    expect(d.reason).toBe("no rule allows this destination");
    expect(verdict(p, "scout", "api.github.com")).toBe("deny");
    expect(verdict(p, "admiral", "api.github.com")).toBe("allow");
  });

  it("denies the trailing-dot, mixed-case and punycode spellings of a denied name", () => {
    const open = compile(
      `${BASE}allow: ["*"]\ndeny: [pastebin.com, "bücher.example", "*.ngrok.io"]\nagents:\n  - { id: a, sources: [10.0.0.1] }\n`,
    );
    for (const t of [
      "pastebin.com",
      "pastebin.com.",
      "PASTEBIN.com.",
      "xn--bcher-kva.example",
      "BÜCHER.example.",
      "x.NGROK.io.",
    ]) {
      expect(decide(open, "a", t).verdict, t).toBe("deny");
    }
    expect(decide(open, "a", "ngrok.io").verdict).toBe("allow");
  });

  it("normalises rules as it normalises targets", () => {
    const p2 = compile(
      `${BASE}allow: ["Pastebin.COM.", "0x7f.1:8080"]\nagents:\n  - { id: a, sources: [10.0.0.1] }\n`,
    );
    expect(verdict(p2, "a", "pastebin.com")).toBe("allow");
    expect(verdict(p2, "a", "127.0.0.1:8080")).toBe("allow");
    expect(verdict(p2, "a", "2130706433:8080")).toBe("allow");
    expect(verdict(p2, "a", "127.0.0.1:8081")).toBe("deny");
  });

  it("lets a deny at any level beat an allow at any other", () => {
    const p2 = compile(`${BASE}allow: [shared.example, "*.wide.example"]
deny: [global-deny.example]
tiers:
  t: { allow: [global-deny.example, tier-deny.example.net], deny: [tier-deny.example, x.wide.example] }
fleets:
  f: { deny: [fleet-deny.example], allow: [agent-deny.example] }
agents:
  - { id: a, tier: t, fleet: f, sources: [10.0.0.1], allow: [tier-deny.example, fleet-deny.example, global-deny.example], deny: [agent-deny.example, "shared.example:443"] }
  - { id: b, tier: t, sources: [10.0.0.2], allow: [fleet-deny.example, agent-deny.example] }
`);
    expect(decide(p2, "a", "global-deny.example").rule).toBe("global deny global-deny.example");
    expect(decide(p2, "a", "tier-deny.example").rule).toBe("tier:t deny tier-deny.example");
    expect(decide(p2, "a", "fleet-deny.example").rule).toBe("fleet:f deny fleet-deny.example");
    expect(decide(p2, "a", "agent-deny.example").rule).toBe("agent:a deny agent-deny.example");
    expect(decide(p2, "a", "x.wide.example").rule).toBe("tier:t deny x.wide.example");
    for (const t of [
      "global-deny.example",
      "tier-deny.example",
      "fleet-deny.example",
      "agent-deny.example",
    ]) {
      expect(decide(p2, "a", t).verdict, t).toBe("deny");
    }
    expect(verdict(p2, "a", "shared.example:443")).toBe("deny");
    expect(verdict(p2, "a", "shared.example:80")).toBe("allow");
    expect(verdict(p2, "a", "y.wide.example")).toBe("allow");
    // Another agent's rules and fleet do not leak: b is not in fleet f.
    expect(verdict(p2, "b", "fleet-deny.example")).toBe("allow");
    expect(verdict(p2, "b", "agent-deny.example")).toBe("allow");
    expect(verdict(p2, "b", "shared.example:443")).toBe("allow");
  });

  it("matches IP literals in any spelling against CIDR and address rules; names never match CIDRs", () => {
    const p2 = compile(`${BASE}allow: ["192.0.2.0/24", "[2001:db8::/32]:443", "198.51.100.7"]
deny: [192.0.2.128/25]
agents:
  - { id: a, sources: [10.0.0.1] }
`);
    expect(verdict(p2, "a", "192.0.2.5")).toBe("allow");
    expect(verdict(p2, "a", "3221225989")).toBe("allow"); // 192.0.2.5
    expect(verdict(p2, "a", "192.0.2.200")).toBe("deny");
    expect(verdict(p2, "a", "0300.0.2.200")).toBe("deny");
    expect(verdict(p2, "a", "[2001:db8::5]:443")).toBe("allow");
    expect(verdict(p2, "a", "[2001:db8::5]:80")).toBe("deny");
    expect(verdict(p2, "a", "[::ffff:198.51.100.7]")).toBe("allow");
    expect(verdict(p2, "a", "198.51.100.8")).toBe("deny");
    expect(verdict(p2, "a", "www.example.com")).toBe("deny");
    // A host that is an address but arrived without `ip` set is still judged as one.
    expect(p2.decide({ id: "a" }, { host: "192.0.2.200", port: 443 }).verdict).toBe("deny");
  });

  it("refuses the shield's own endpoint even when everything is allowed", () => {
    const open = compile(
      `${BASE}allow: ["*", 0.0.0.0/0, "::/0"]\nagents:\n  - { id: a, sources: [10.0.0.1] }\n`,
      {
        endpoints: [
          { host: "127.0.0.1", port: 3128 },
          { host: "::1", port: 9090 },
        ],
      },
    );
    expect(verdict(open, "a", "127.0.0.1:3128")).toBe("deny");
    expect(verdict(open, "a", "0x7f.1:3128")).toBe("deny");
    expect(verdict(open, "a", "[::ffff:7f00:1]:3128")).toBe("deny");
    expect(verdict(open, "a", "[::1]:9090")).toBe("deny");
    expect(verdict(open, "a", "127.0.0.1:3129")).toBe("allow");
  });

  it("denies an agent the config does not know", () => {
    expect(p.decide({ id: "ghost" }, parseTarget("api.openai.com", 443))).toMatchObject({ verdict: "deny" });
    expect(p.checkAddress({ id: "ghost" }, parseTarget("api.openai.com", 443), "8.8.8.8").verdict).toBe(
      "deny",
    );
  });
});

describe("modes", () => {
  const yaml = `${BASE}mode: enforce
allow: [allowed.example]
deny: [denied.example]
fleets:
  f: { isolation: isolated }
  g: { isolation: isolated, mode: audit }
agents:
  - { id: a, fleet: f, sources: [10.0.0.1] }
  - { id: b, fleet: g, sources: [10.0.0.2] }
  - { id: c, fleet: f, sources: [10.0.0.3], mode: lockdown }
  - { id: d, sources: [10.0.0.4], mode: audit }
`;

  it("audit turns a would-be deny into an audited allow that keeps the rule", () => {
    const p = compile(yaml);
    expect(decide(p, "b", "denied.example")).toEqual({
      verdict: "allow",
      audited: true,
      mode: "audit",
      rule: "global deny denied.example",
      reason: "audit: matched global deny denied.example",
    });
    expect(decide(p, "d", "unknown.example")).toMatchObject({ verdict: "allow", audited: true, rule: null });
    expect(decide(p, "d", "allowed.example")).toMatchObject({ verdict: "allow", audited: false });
    expect(decide(p, "a", "denied.example")).toMatchObject({
      verdict: "deny",
      audited: false,
      mode: "enforce",
    });
  });

  it("lockdown anywhere wins over everything", () => {
    const p = compile(yaml);
    expect(decide(p, "c", "allowed.example")).toMatchObject({ verdict: "deny", mode: "lockdown" });
    p.setMode({ fleet: "g" }, "lockdown");
    expect(p.modeOf(p.agent("b") as Agent)).toBe("lockdown");
    expect(decide(p, "b", "allowed.example")).toMatchObject({
      verdict: "deny",
      mode: "lockdown",
      audited: false,
    });
    p.setMode({ global: true }, "lockdown");
    expect(verdict(p, "a", "allowed.example")).toBe("deny");
    expect(verdict(p, "d", "allowed.example")).toBe("deny");
  });

  it("takes the strictest of global, fleet and agent, and changes at run time", () => {
    const p = compile(yaml);
    const a = p.agent("a") as Agent;
    expect(p.modeOf(a)).toBe("enforce");
    p.setMode({ global: true }, "audit");
    expect(p.modeOf(a)).toBe("audit");
    expect(verdict(p, "a", "denied.example")).toBe("audited");
    p.setMode({ agent: "a" }, "enforce");
    expect(p.modeOf(a)).toBe("audit");
    p.setMode({ global: true }, "enforce");
    expect(p.modeOf(a)).toBe("enforce");
    p.setMode({ agent: "a" }, "lockdown");
    expect(p.modeOf(a)).toBe("lockdown");
    p.setMode({ agent: "a" }, null);
    expect(p.modeOf(a)).toBe("enforce");
    p.setMode({ fleet: "g" }, null);
    expect(p.modeOf(p.agent("b") as Agent)).toBe("enforce");
    expect(() => p.setMode({ fleet: "nope" }, "audit")).toThrow('unknown fleet "nope"');
    expect(() => p.setMode({ agent: "nope" }, "audit")).toThrow('unknown agent "nope"');
    expect(() => p.setMode({ global: true }, null)).toThrow();
  });

  it("never audits the network-safety checks open, and lockdown closes them too", () => {
    const p = compile(yaml);
    expect(check(p, "b", "169.254.169.254").verdict).toBe("deny");
    expect(check(p, "b", "8.8.8.8").verdict).toBe("allow");
    expect(check(p, "c", "8.8.8.8")).toMatchObject({ verdict: "deny", mode: "lockdown" });
  });
});

describe("checkAddress", () => {
  const p = compile(EXAMPLE);

  it.each([
    ["169.254.169.254", "link-local"],
    ["127.0.0.1", "loopback"],
    ["10.0.0.1", "private"],
    ["172.20.1.1", "private"],
    ["192.168.0.10", "private"],
    ["100.100.100.200", "cgnat"],
    ["fd00::1", "ula"],
    ["fe80::1", "link-local"],
    ["::1", "loopback"],
    ["::", "this host"],
    ["0.0.0.0", "this host"],
    ["224.0.0.251", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["::ffff:169.254.169.254", "link-local"],
    ["64:ff9b::a9fe:a9fe", "169.254.169.254"],
    ["64:ff9b:1::7f00:1", "127.0.0.1"],
    ["2002:a00:1::", "10.0.0.1"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"],
  ])("refuses %s (%s)", (address, why) => {
    const d = check(p, "scout", address);
    expect(d.verdict).toBe("deny");
    expect(d.reason).toContain(why);
  });

  it.each(["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"])(
    "allows public %s",
    (a) => {
      expect(check(p, "scout", a)).toMatchObject({ verdict: "allow", audited: false });
    },
  );

  it("refuses text that is not an address", () => {
    expect(check(p, "scout", "localhost").verdict).toBe("deny");
  });

  it("opens a private range only under an explicit CIDR allow, at the agent's own levels and port", () => {
    const p2 = compile(`${BASE}tiers:
  db: { allow: ["10.1.0.0/16:5432"] }
agents:
  - { id: a, tier: db, sources: [10.0.0.1], allow: ["[fd00:1::/32]"] }
  - { id: b, sources: [10.0.0.2], allow: ["*"] }
`);
    expect(check(p2, "a", "10.1.2.3", 5432)).toMatchObject({
      verdict: "allow",
      rule: "tier:db allow 10.1.0.0/16:5432",
    });
    expect(check(p2, "a", "10.1.2.3", 22).verdict).toBe("deny");
    expect(check(p2, "a", "10.2.0.1", 5432).verdict).toBe("deny");
    expect(check(p2, "a", "fd00:1::9").verdict).toBe("allow");
    expect(check(p2, "b", "10.1.2.3", 5432).verdict).toBe("deny");
    // "*" allows any name, but not any address: private ranges stay shut.
    expect(check(p2, "b", "192.168.1.1").verdict).toBe("deny");
  });

  it("refuses a public address under a CIDR deny rule, so a name cannot resolve around it", () => {
    const p2 = compile(
      `${BASE}allow: ["*"]\ndeny: [198.51.100.0/24, "2a00:1450::/32"]\nagents:\n  - { id: a, sources: [10.0.0.1] }\n`,
    );
    expect(check(p2, "a", "198.51.100.20")).toMatchObject({
      verdict: "deny",
      rule: "global deny 198.51.100.0/24",
    });
    expect(check(p2, "a", "2a00:1450::1")).toMatchObject({
      verdict: "deny",
      rule: "global deny 2a00:1450::/32",
    });
    expect(check(p2, "a", "8.8.4.4").verdict).toBe("allow");
  });

  it("applies CIDR rules, endpoints and fleet isolation to the IPv4 address a NAT64/6to4 form carries", () => {
    const p2 = compile(
      `${BASE}allow: ["*", "198.18.0.0/15"]
deny: [198.51.100.0/24]
fleets:
  f: { isolation: isolated }
agents:
  - { id: a, fleet: f, sources: [10.0.0.1] }
  - { id: b, fleet: f, sources: [10.0.0.2] }
`,
      { endpoints: [{ host: "192.0.2.10", port: 3128 }] },
    );
    // 198.51.100.20 behind NAT64 and 6to4: the deny rule still holds.
    expect(check(p2, "a", "64:ff9b::c633:6414")).toMatchObject({
      verdict: "deny",
      rule: "global deny 198.51.100.0/24",
    });
    expect(check(p2, "a", "2002:c633:6414::1").verdict).toBe("deny");
    expect(check(p2, "a", "64:ff9b::c000:20a", 3128).reason).toContain("shield's own endpoint");
    expect(check(p2, "a", "64:ff9b::a00:2").reason).toContain("belongs to agent b");
    // An allow CIDR for the carried address opens it, as it opens the address itself.
    expect(check(p2, "a", "64:ff9b::c612:1")).toMatchObject({
      verdict: "allow",
      rule: "global allow 198.18.0.0/15",
    });
    expect(check(p2, "a", "64:ff9b::cb00:7101").reason).toContain("203.0.113.1");
  });

  it("refuses the shield's own endpoints even under an allow-all CIDR", () => {
    const open = `${BASE}allow: ["*", 0.0.0.0/0, "::/0"]\nagents:\n  - { id: a, sources: [10.0.0.1] }\n`;
    const p2 = compile(open, {
      endpoints: [
        { host: "10.9.0.1", port: 3128 },
        { host: "127.0.0.1", port: 9090 },
      ],
    });
    expect(check(p2, "a", "10.9.0.1", 3128).reason).toContain("shield's own endpoint");
    expect(check(p2, "a", "::ffff:10.9.0.1", 3128).verdict).toBe("deny");
    expect(check(p2, "a", "127.0.0.1", 9090).verdict).toBe("deny");
    expect(check(p2, "a", "10.9.0.1", 443).verdict).toBe("allow");
    expect(check(p2, "a", "127.0.0.1", 80).verdict).toBe("allow");
    // A wildcard listen address may be any local address: every address on that port is refused.
    const p3 = compile(open, { endpoints: [{ host: "0.0.0.0", port: 3128 }] });
    expect(check(p3, "a", "10.200.0.7", 3128).verdict).toBe("deny");
    expect(check(p3, "a", "10.200.0.7", 3129).verdict).toBe("allow");
  });

  it("never opens this host (0.0.0.0/8, ::) in any spelling, even under allow-all CIDRs", () => {
    const open = `${BASE}allow: ["*", 0.0.0.0/0, "::/0"]\nagents:\n  - { id: a, sources: [10.0.0.1] }\n`;
    const p2 = compile(open, {
      endpoints: [
        { host: "127.0.0.1", port: 13400 },
        { host: "::1", port: 13401 },
      ],
    });
    const literals = [
      "0.0.0.0",
      "0",
      "0.0.0.5",
      "[::]",
      "[0:0:0:0:0:0:0:0]",
      "[::ffff:0.0.0.0]",
      "[::ffff:0:5]",
    ];
    for (const port of [13400, 13401, 443]) {
      for (const l of literals) {
        const d = decide(p2, "a", `${l}:${port}`);
        expect(d.verdict, `${l}:${port}`).toBe("deny");
        // On the shield's own ports the reason names them: 0.0.0.0 reaches a loopback listener.
        expect(d.reason, `${l}:${port}`).toMatch(port === 443 ? /is this host/ : /shield's own endpoint/);
      }
      // A name that resolves to them: every resolved address is checked.
      for (const a of ["0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0", "64:ff9b::0.0.0.0"])
        expect(check(p2, "a", a, port).verdict, `${a} port ${port}`).toBe("deny");
    }
    expect(check(p2, "a", "0.0.0.0", 443).reason).toContain("never dialled, whatever the rules say");
    expect(check(p2, "a", "1.2.3.4", 443).verdict).toBe("allow");
  });

  it("keeps agents apart unless both sit in one fleet with isolation: fleet", () => {
    const p2 = compile(`${BASE}allow: ["*", 10.0.0.0/8]
fleets:
  open: { isolation: fleet }
  open2: { isolation: fleet }
  closed: { isolation: isolated }
agents:
  - { id: o1, fleet: open, sources: [10.1.0.1] }
  - { id: o2, fleet: open, sources: [10.1.0.2] }
  - { id: o3, fleet: open2, sources: [10.1.0.3] }
  - { id: c1, fleet: closed, sources: [10.2.0.1] }
  - { id: c2, fleet: closed, sources: [10.2.0.2] }
  - { id: lone, sources: [10.3.0.1] }
`);
    expect(check(p2, "o1", "10.1.0.2")).toMatchObject({
      verdict: "allow",
      rule: "fleet:open isolation fleet",
    });
    expect(check(p2, "o2", "10.1.0.1").verdict).toBe("allow");
    // Different fleets, isolated fleets and fleetless agents stay apart, even under an allow CIDR.
    expect(check(p2, "o1", "10.1.0.3").reason).toContain("belongs to agent o3");
    expect(check(p2, "c1", "10.2.0.2").verdict).toBe("deny");
    expect(check(p2, "o1", "10.2.0.1").verdict).toBe("deny");
    expect(check(p2, "c1", "10.1.0.1").verdict).toBe("deny");
    expect(check(p2, "lone", "10.1.0.1").verdict).toBe("deny");
    expect(check(p2, "o1", "10.3.0.1").verdict).toBe("deny");
    // An address no agent owns is judged by the CIDR allow as usual.
    expect(check(p2, "c1", "10.9.9.9").verdict).toBe("allow");
  });
});
