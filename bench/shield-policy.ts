/**
 * Policy decisions per second with 10,000 rules, against a linear-scan matcher over the same
 * parsed rules, both measured in this run. The workload mixes exact hits, wildcard hits at
 * several depths, denies, misses and IP literals across many agents. Both matchers must agree on
 * every verdict of the workload; a disagreement fails the run.
 *
 *   npx tsx bench/shield-policy.ts [--rules N] [--seconds S]
 */
import { performance } from "node:perf_hooks";
import { parseShieldConfig, type ShieldConfig } from "../src/shield/config.js";
import { Policy, parseTarget } from "../src/shield/policy/index.js";
import { type ParsedRule, parseRule } from "../src/shield/policy/rules.js";
import { cidrContains, parseIP } from "../src/net/addresses.js";
import type { Agent, Target } from "../src/shield/types.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const RULES = arg("--rules", 10_000);
const SECONDS = arg("--seconds", 2);
const TIERS = 4;
const AGENTS = 200;

// Deterministic, so runs compare.
let seed = 42;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}

function buildConfig(): string {
  const q = (s: string) => JSON.stringify(s);
  const globalAllow: string[] = [];
  const globalDeny: string[] = [];
  const tierAllow: string[][] = Array.from({ length: TIERS }, () => []);
  let n = 0;
  const perTier = Math.floor((RULES * 0.3) / TIERS);
  for (let t = 0; t < TIERS; t++) {
    for (let i = 0; i < perTier; i++, n++) {
      tierAllow[t]?.push(i % 3 === 0 ? `*.t${t}-svc${i}.example.net` : `api${i}.t${t}.example.org:443`);
    }
  }
  let i = 0;
  while (n < RULES - AGENTS) {
    const k = i % 10;
    if (k < 5) globalAllow.push(`host${i}.example.com`);
    else if (k < 7) globalAllow.push(`*.zone${i}.example.com`);
    else if (k === 7) globalDeny.push(`bad${i}.example.com`);
    else if (k === 8) globalDeny.push(`*.evil${i}.example.com`);
    else globalAllow.push(`${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}.0/24`.replace(/^0\./, "11."));
    i++;
    n++;
  }
  const lines = [
    "listen: 127.0.0.1:3128",
    "log: { path: /tmp/bench-shield.db }",
    `allow: [${globalAllow.map(q).join(", ")}]`,
    `deny: [${globalDeny.map(q).join(", ")}]`,
    "tiers:",
    ...tierAllow.map((a, t) => `  t${t}: { allow: [${a.map(q).join(", ")}] }`),
    "agents:",
  ];
  for (let a = 0; a < AGENTS; a++, n++) {
    lines.push(
      `  - { id: agent${a}, tier: t${a % TIERS}, sources: [10.${a >> 8}.${a & 255}.0/24], deny: [${q(`host${a * 10}.example.com`)}] }`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function workload(cfg: ShieldConfig): Array<{ agent: Agent; target: Target }> {
  const out: Array<{ agent: Agent; target: Target }> = [];
  const allows = cfg.allow;
  for (let k = 0; k < 100_000; k++) {
    const a = rand(AGENTS);
    const agent: Agent = { id: `agent${a}`, tier: `t${a % TIERS}` };
    const r = rand(100);
    const pick = allows[rand(allows.length)] as string;
    let authority: string;
    if (r < 35) authority = `host${rand(RULES)}.example.com`;
    else if (r < 55) authority = `a${rand(9)}.b.zone${rand(RULES)}.example.com`;
    else if (r < 65) authority = `api${rand(Math.floor(RULES / 10))}.t${a % TIERS}.example.org:443`;
    else if (r < 75) authority = `x.evil${rand(RULES)}.example.com`;
    else if (r < 90) authority = `unknown${rand(1e6)}.example.io`;
    else if (pick.includes("/")) authority = `${pick.slice(0, pick.lastIndexOf("."))}.${rand(256)}`;
    else authority = `${rand(223) + 1}.${rand(256)}.${rand(256)}.${rand(256)}`;
    out.push({ agent, target: parseTarget(authority, 443) });
  }
  return out;
}

/** The peer: every rule of the agent's levels in one list, scanned in full for each decision. */
class LinearPolicy {
  private readonly byAgent = new Map<string, Array<{ verdict: "allow" | "deny"; rule: ParsedRule }>>();

  constructor(cfg: ShieldConfig) {
    const level = (s: { allow: string[]; deny: string[] }) => [
      ...s.deny.map((r) => ({ verdict: "deny" as const, rule: parseRule(r) })),
      ...s.allow.map((r) => ({ verdict: "allow" as const, rule: parseRule(r) })),
    ];
    const global = level(cfg);
    const tiers = new Map(Object.entries(cfg.tiers).map(([k, v]) => [k, level(v)]));
    for (const a of cfg.agents) {
      this.byAgent.set(a.id, [...global, ...(tiers.get(a.tier ?? "") ?? []), ...level(a)]);
    }
  }

  decide(agent: Agent, t: Target): "allow" | "deny" {
    const rules = this.byAgent.get(agent.id);
    if (!rules) return "deny";
    const ip = t.ip ? parseIP(t.ip.address) : null;
    let allowed = false;
    for (const { verdict, rule } of rules) {
      if (rule.port !== 0 && rule.port !== t.port) continue;
      let hit: boolean;
      switch (rule.kind) {
        case "any":
          hit = true;
          break;
        case "exact":
          hit = ip === null && t.host === rule.host;
          break;
        case "wildcard":
          hit = ip === null && t.host.endsWith(`.${rule.host}`);
          break;
        case "cidr":
          hit = ip !== null && rule.cidr !== null && cidrContains(rule.cidr, ip);
          break;
      }
      if (!hit) continue;
      if (verdict === "deny") return "deny";
      allowed = true;
    }
    return allowed ? "allow" : "deny";
  }
}

/**
 * Runs for `seconds` of wall time and reports decisions per second of this process's CPU time:
 * on a shared machine wall time also counts other processes' turns, CPU time counts only ours.
 */
function measure(label: string, seconds: number, run: (i: number) => unknown): number {
  for (let i = 0; i < 20_000; i++) run(i);
  let count = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const until = start + seconds * 1000;
  let now = start;
  while (now < until) {
    for (let i = 0; i < 1000; i++) run(count++);
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  const rate = count / ((cpu.user + cpu.system) / 1e6);
  const wall = count / ((now - start) / 1000);
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US").padStart(13);
  console.log(`${label.padEnd(26)} ${fmt(rate)} decisions/CPU-s  (${fmt(wall)} /wall-s)`);
  return rate;
}

const t0 = performance.now();
const cfg = parseShieldConfig(buildConfig(), "bench.yaml");
const t1 = performance.now();
const ruleCount =
  cfg.allow.length +
  cfg.deny.length +
  Object.values(cfg.tiers).reduce((s, t) => s + t.allow.length + t.deny.length, 0) +
  cfg.agents.reduce((s, a) => s + a.allow.length + a.deny.length, 0);
const policy = Policy.compile(cfg, { endpoints: [cfg.listen] });
const t2 = performance.now();
const linear = new LinearPolicy(cfg);
console.log(
  `rules: ${ruleCount}, agents: ${AGENTS}; YAML + validation ${(t1 - t0).toFixed(0)} ms, compile ${(t2 - t1).toFixed(0)} ms`,
);

const work = workload(cfg);
const agents = new Map(cfg.agents.map((a) => [a.id, policy.agent(a.id) as Agent]));
for (const w of work) w.agent = agents.get(w.agent.id) as Agent;

let mismatches = 0;
const tally = { allow: 0, deny: 0 };
for (const { agent, target } of work) {
  const a = policy.decide(agent, target).verdict;
  tally[a]++;
  if (a !== linear.decide(agent, target)) {
    if (mismatches++ < 5) console.error(`mismatch: ${agent.id} ${target.host}:${target.port}`);
  }
}
console.log(`workload: ${work.length} targets, ${tally.allow} allowed, ${tally.deny} denied`);
if (mismatches > 0) {
  console.error(`${mismatches} verdicts differ between the indexed and the linear matcher`);
  process.exit(1);
}

const mask = work.length;
const indexed = measure("clawguard Policy.decide", SECONDS, (i) => {
  const w = work[i % mask] as { agent: Agent; target: Target };
  return policy.decide(w.agent, w.target);
});
const naive = measure("linear scan (peer)", Math.min(SECONDS, 2), (i) => {
  const w = work[i % mask] as { agent: Agent; target: Target };
  return linear.decide(w.agent, w.target);
});
console.log(`ratio: ${(indexed / naive).toFixed(0)}x the linear scan`);
console.log(`target >= 1,000,000 decisions/s: ${indexed >= 1_000_000 ? "met" : "NOT met"}`);
