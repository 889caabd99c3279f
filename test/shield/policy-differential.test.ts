import { describe, expect, it } from "vitest";
import { parseShieldConfig, type ShieldConfig } from "../../src/shield/config.js";
import { Policy, parseTarget } from "../../src/shield/policy/index.js";
import { parseRule } from "../../src/shield/policy/rules.js";
import { cidrContains, parseIP } from "../../src/net/addresses.js";
import type { Agent, Target } from "../../src/shield/types.js";

/**
 * The indexed policy (exact Map, suffix walk, CIDR buckets, merged tier+fleet indexes) against the
 * rule semantics written as plainly as possible: every rule of every level the agent belongs to,
 * scanned one by one, a deny anywhere wins, otherwise any allow, otherwise deny.
 */
const parsed = new Map<string, ReturnType<typeof parseRule>>();

function reference(cfg: ShieldConfig, agentId: string, t: Target): { verdict: string; byRule: boolean } {
  const a = cfg.agents.find((x) => x.id === agentId);
  if (!a) return { verdict: "deny", byRule: false };
  const levels = [cfg, a.tier ? cfg.tiers[a.tier] : undefined, a.fleet ? cfg.fleets[a.fleet] : undefined, a];
  const ip = t.ip ? parseIP(t.ip.address) : null;
  let allowed = false;
  for (const level of levels) {
    if (!level) continue;
    for (const verdict of ["deny", "allow"] as const) {
      for (const text of level[verdict]) {
        const r = parsed.get(text) ?? parseRule(text);
        parsed.set(text, r);
        if (r.port !== 0 && r.port !== t.port) continue;
        const hit =
          r.kind === "any" ||
          (r.kind === "exact" && ip === null && t.host === r.host) ||
          (r.kind === "wildcard" && ip === null && t.host.endsWith(`.${r.host}`)) ||
          (r.kind === "cidr" && ip !== null && cidrContains(r.cidr!, ip));
        if (!hit) continue;
        if (verdict === "deny") return { verdict: "deny", byRule: true };
        allowed = true;
      }
    }
  }
  return allowed ? { verdict: "allow", byRule: true } : { verdict: "deny", byRule: false };
}

let seed = 7;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}
function pick<T>(xs: readonly T[]): T {
  return xs[rand(xs.length)] as T;
}

const LABELS = ["a", "b", "x", "api", "example", "com", "net"];
const PORTS = ["", ":80", ":443"];

function name(): string {
  return Array.from({ length: 1 + rand(4) }, () => pick(LABELS)).join(".");
}
function ip(): string {
  return pick(["10.0.", "192.0.", "198.51."]) + `${rand(3)}.${rand(4)}`;
}
function rule(): string {
  switch (rand(6)) {
    case 0:
      return `*.${name()}${pick(PORTS)}`;
    case 1:
      return `${pick(["10.0.0.0/16", "192.0.1.0/24", "198.51.0.0/16", "10.0.1.0/30", "0.0.0.0/0"])}${pick(PORTS)}`;
    case 2:
      return `${ip()}${pick(PORTS)}`;
    case 3:
      return rand(8) === 0 ? `*${pick(PORTS)}` : `${name()}${pick(PORTS)}`;
    default:
      return `${name()}${pick(PORTS)}`;
  }
}
function rules(n: number): string {
  return `[${Array.from({ length: rand(n) }, () => JSON.stringify(rule())).join(", ")}]`;
}

function randomConfig(): ShieldConfig {
  const lines = [
    "listen: 127.0.0.1:3128",
    "log: { path: /tmp/x.db }",
    `allow: ${rules(12)}`,
    `deny: ${rules(6)}`,
    "tiers:",
    `  t0: { allow: ${rules(10)}, deny: ${rules(4)} }`,
    `  t1: { allow: ${rules(10)}, deny: ${rules(4)} }`,
    "fleets:",
    `  f0: { allow: ${rules(6)}, deny: ${rules(3)} }`,
    `  f1: { allow: ${rules(6)}, deny: ${rules(3)} }`,
    "agents:",
  ];
  for (let i = 0; i < 6; i++) {
    const tier = rand(3) === 0 ? "" : `, tier: t${rand(2)}`;
    const fleet = rand(3) === 0 ? "" : `, fleet: f${rand(2)}`;
    lines.push(
      `  - { id: a${i}${tier}${fleet}, sources: [10.9.0.${i}], allow: ${rules(4)}, deny: ${rules(3)} }`,
    );
  }
  return parseShieldConfig(`${lines.join("\n")}\n`, "random.yaml");
}

describe("Policy.decide against the plain rule semantics", () => {
  it("agrees on 60 random configs x 500 random targets", () => {
    let compared = 0;
    const seen = { allow: 0, ruleDeny: 0, defaultDeny: 0 };
    for (let c = 0; c < 60; c++) {
      const cfg = randomConfig();
      const policy = Policy.compile(cfg, { endpoints: [] });
      for (let k = 0; k < 500; k++) {
        const id = `a${rand(6)}`;
        const authority = rand(3) === 0 ? `${ip()}${pick(PORTS)}` : `${name()}${pick(PORTS)}`;
        const target = parseTarget(authority, 443);
        const got = policy.decide(policy.agent(id) as Agent, target);
        const want = reference(cfg, id, target);
        if (got.verdict !== want.verdict || (got.rule !== null) !== want.byRule) {
          expect.fail(
            `${id} -> ${authority}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}\n${JSON.stringify(cfg, null, 1)}`,
          );
        }
        if (got.verdict === "allow") seen.allow++;
        else if (got.rule !== null) seen.ruleDeny++;
        else seen.defaultDeny++;
        compared++;
      }
    }
    expect(compared).toBe(30_000);
    // The generator must exercise every outcome, or agreement would prove little.
    expect(seen.allow).toBeGreaterThan(1500);
    expect(seen.ruleDeny).toBeGreaterThan(1500);
    expect(seen.defaultDeny).toBeGreaterThan(1500);
  });
});
