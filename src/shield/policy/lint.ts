/**
 * Warnings about a valid shield.yaml: rules that are legal but most likely not what the operator
 * meant, because they open what the shield exists to close or because they can never take
 * effect. Pure: a compiled config in, warnings out; `shield check` prints them.
 */
import type { ShieldConfig } from "../config.js";
import { type Cidr, cidrContains, formatCidr, maskV4, maskV6, parseIP } from "../../net/addresses.js";
import { parseRule, type ParsedRule } from "./rules.js";

export type LintCode =
  | "metadata-open"
  | "all-addresses-open"
  | "loopback-open"
  | "this-host"
  | "allow-everything"
  | "never-applies"
  | "reaches-nothing"
  | "unused"
  | "shared-token"
  | "mode";

export interface LintWarning {
  code: LintCode;
  /** Where in shield.yaml, as config errors name it: `tiers.crew.allow[1]`. */
  key: string;
  message: string;
}

/** Cloud metadata services the address checks keep closed unless a CIDR opens them. */
const METADATA = ["169.254.169.254", "fd00:ec2::254"].map((a) => ({ text: a, ip: parseIP(a)! }));
const LOOPBACK = parseIP("127.0.0.1")!;
/** This host: 0.0.0.0/8 and ::, which the address checks refuse whatever a rule says. */
const THIS_HOST = [parseIP("0.0.0.0")!, parseIP("::")!];

interface Level {
  /** Key of the rule set in shield.yaml ("" for the top level). */
  key: string;
  /** Who the rules apply to, for messages. */
  who: string;
  allow: string[];
  deny: string[];
}

interface Rule {
  text: string;
  key: string;
  parsed: ParsedRule;
}

function rulesOf(level: Level, verdict: "allow" | "deny"): Rule[] {
  const prefix = level.key ? `${level.key}.` : "";
  // The config loader has parsed every rule already: these cannot throw.
  return level[verdict].map((text, i) => ({
    text,
    key: `${prefix}${verdict}[${i}]`,
    parsed: parseRule(text),
  }));
}

/** Whether `deny` matches every destination `allow` matches, so that the allow never decides. */
export function covers(deny: ParsedRule, allow: ParsedRule): boolean {
  if (deny.port !== 0 && deny.port !== allow.port) return false;
  switch (deny.kind) {
    case "any":
      return true;
    case "exact":
      return allow.kind === "exact" && allow.host === deny.host;
    case "wildcard":
      return (
        (allow.kind === "exact" || allow.kind === "wildcard") &&
        (allow.host.endsWith(`.${deny.host}`) || (allow.kind === "wildcard" && allow.host === deny.host))
      );
    case "cidr":
      return allow.kind === "cidr" && cidrWithin(allow.cidr!, deny.cidr!);
  }
}

function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  return inner.family === 4
    ? maskV4(inner.network as number, outer.prefix) === outer.network
    : maskV6(inner.network as bigint, outer.prefix) === outer.network;
}

export function lintShieldConfig(cfg: ShieldConfig): LintWarning[] {
  const out: LintWarning[] = [];
  const global: Level = { key: "", who: "every agent", allow: cfg.allow, deny: cfg.deny };
  const tiers = new Map(
    Object.entries(cfg.tiers).map(([n, t]) => [n, { key: `tiers.${n}`, who: `tier ${n}`, ...t } as Level]),
  );
  const fleets = new Map(
    Object.entries(cfg.fleets).map(([n, f]) => [
      n,
      { key: `fleets.${n}`, who: `fleet ${n}`, allow: f.allow, deny: f.deny } as Level,
    ]),
  );
  const agents = cfg.agents.map((a, i) => ({
    agent: a,
    level: { key: `agents[${i}]`, who: `agent ${a.id}`, allow: a.allow, deny: a.deny } as Level,
  }));
  const levels = [global, ...tiers.values(), ...fleets.values(), ...agents.map((a) => a.level)];

  // Allow rules that open what the address checks close.
  for (const level of levels) {
    for (const r of rulesOf(level, "allow")) {
      const p = r.parsed;
      if (p.kind === "any") {
        out.push({
          code: "allow-everything",
          key: r.key,
          message: `"${r.text}" lets ${level.who} reach every destination by name; only the address checks remain`,
        });
      }
      if (p.kind !== "cidr") continue;
      const c = p.cidr!;
      const self = THIS_HOST.find((ip) => cidrContains(c, ip));
      if (self) {
        out.push({
          code: "this-host",
          key: r.key,
          message: `"${r.text}" covers ${self.family === 4 ? "0.0.0.0/8" : "::"} (this host), which the shield never dials whatever the rules say: Linux would connect it to the shield's own machine`,
        });
      }
      if (c.prefix === 0) {
        out.push({
          code: "all-addresses-open",
          key: r.key,
          message: `"${r.text}"${r.text.trim() === formatCidr(c) ? "" : ` (${formatCidr(c)})`} turns the address checks off for ${level.who}: loopback, private and link-local addresses, cloud metadata included, become reachable`,
        });
        continue;
      }
      const meta = METADATA.find((m) => cidrContains(c, m.ip));
      if (meta) {
        out.push({
          code: "metadata-open",
          key: r.key,
          message: `"${r.text}" opens the cloud metadata service (${meta.text}) to ${level.who}: its credentials are one request away`,
        });
      }
      if (cidrContains(c, LOOPBACK)) {
        out.push({
          code: "loopback-open",
          key: r.key,
          message: `"${r.text}" lets ${level.who} reach services listening on the shield's own host (loopback)`,
        });
      }
    }
  }

  // Allow rules a deny always beats: global denies apply to every agent, a level's own to it.
  const globalDenies = rulesOf(global, "deny");
  const neverApplies = (level: Level, denies: Rule[]) => {
    for (const a of rulesOf(level, "allow")) {
      const d = denies.find((x) => covers(x.parsed, a.parsed));
      if (d) {
        out.push({
          code: "never-applies",
          key: a.key,
          message: `"${a.text}" never applies: "${d.text}" (${d.key}) denies everything it allows, and a deny wins`,
        });
      }
    }
  };
  neverApplies(global, globalDenies);
  for (const t of tiers.values()) neverApplies(t, [...globalDenies, ...rulesOf(t, "deny")]);
  for (const f of fleets.values()) neverApplies(f, [...globalDenies, ...rulesOf(f, "deny")]);
  for (const { agent, level } of agents) {
    const denies = [
      ...globalDenies,
      ...(agent.tier !== undefined ? rulesOf(tiers.get(agent.tier)!, "deny") : []),
      ...(agent.fleet !== undefined ? rulesOf(fleets.get(agent.fleet)!, "deny") : []),
      ...rulesOf(level, "deny"),
    ];
    neverApplies(level, denies);
  }

  // Agents no allow rule applies to, tiers and fleets nobody uses, tokens two agents share.
  for (const { agent, level } of agents) {
    const allows =
      cfg.allow.length +
      level.allow.length +
      (agent.tier !== undefined ? tiers.get(agent.tier)!.allow.length : 0) +
      (agent.fleet !== undefined ? fleets.get(agent.fleet)!.allow.length : 0);
    if (allows === 0 && !sharesFleet(cfg, agent.fleet)) {
      out.push({
        code: "reaches-nothing",
        key: level.key,
        message: `agent ${agent.id} can reach nothing: no allow rule applies to it (global, its tier, its fleet or its own)`,
      });
    }
  }
  const usedTiers = new Set(cfg.agents.map((a) => a.tier));
  const usedFleets = new Set(cfg.agents.map((a) => a.fleet));
  for (const n of tiers.keys())
    if (!usedTiers.has(n))
      out.push({ code: "unused", key: `tiers.${n}`, message: `no agent is in tier ${n}` });
  for (const n of fleets.keys())
    if (!usedFleets.has(n))
      out.push({ code: "unused", key: `fleets.${n}`, message: `no agent is in fleet ${n}` });
  const tokens = new Map<string, number>();
  cfg.agents.forEach((a, i) => {
    if (a.tokenSha256 === undefined) return;
    const first = tokens.get(a.tokenSha256);
    if (first === undefined) tokens.set(a.tokenSha256, i);
    else
      out.push({
        code: "shared-token",
        key: `agents[${i}].token_sha256`,
        message: `agent ${a.id} has the token of agent ${cfg.agents[first]!.id}: either one can act as the other`,
      });
  });

  if (cfg.mode !== "enforce") {
    out.push({
      code: "mode",
      key: "mode",
      message:
        cfg.mode === "audit"
          ? "mode audit: what the rules deny is let through and only recorded as audited"
          : "mode lockdown: every request is denied",
    });
  }
  return out;
}

/** Fleet-mates in an `isolation: fleet` fleet reach each other without an allow rule. */
function sharesFleet(cfg: ShieldConfig, fleet: string | undefined): boolean {
  if (fleet === undefined || cfg.fleets[fleet]?.isolation !== "fleet") return false;
  return cfg.agents.filter((a) => a.fleet === fleet).length > 1;
}
