/**
 * The shield's decision, as a pure function of the compiled config: who is calling (identify),
 * may they go to this destination (decide), and is each address the name resolved to safe to
 * dial (checkAddress). The proxy asks; nothing here does I/O.
 */
import type { Agent, BudgetLimit, Decision, Mode, Target } from "../types.js";
import type { AgentConfig, BudgetConfig, Endpoint, FleetConfig, ShieldConfig } from "../config.js";
import { type IP, classify, embeddedIPv4, formatIP, isThisHost, parseIP } from "../../net/addresses.js";
import { Identifier, parseSource } from "./identity.js";
import { type MatchResult, RuleIndex, ipOf } from "./rules.js";
import { DEFAULT_REASON, LOCKDOWN_REASON } from "./outcome.js";

export { parseTarget, TargetError } from "./normalize.js";

export type ModeScope = { global: true } | { fleet: string } | { agent: string };

interface Compiled {
  agent: Agent;
  /** Rule levels that apply to the agent, non-empty ones only: global, tier, fleet, agent. */
  levels: RuleIndex[];
  fleet: FleetConfig | undefined;
  /** Budgets of every level that sets one: global, tier, fleet, agent. */
  budgets: readonly BudgetLimit[];
}

const NO_BUDGETS: readonly BudgetLimit[] = Object.freeze([]);

interface SelfEndpoint {
  /** null: the shield listens on every address, so any address at this port may be the shield. */
  ip: IP | null;
  port: number;
  /** A loopback listener: 0.0.0.0 and :: reach it too. */
  loopback: boolean;
}

/** Rule copies the merged (tier, fleet) indexes may hold in total. */
const MERGE_BUDGET = 2_000_000;

const RANK: Record<Mode, number> = { enforce: 0, audit: 1, lockdown: 2 };

export class Policy {
  private globalMode: Mode;
  private readonly fleetModes = new Map<string, Mode>();
  private readonly agentModes = new Map<string, Mode>();
  private readonly agents = new Map<string, Compiled>();
  private readonly fleets: Record<string, FleetConfig>;
  private readonly identifier: Identifier;
  private readonly self: SelfEndpoint[];
  private readonly scratch: MatchResult = { deny: null, allow: null };
  private readonly profiles = new Map<string, RuleIndex[]>();
  private mergedRules = 0;

  private constructor(cfg: ShieldConfig, self: { endpoints: Endpoint[] }) {
    this.globalMode = cfg.mode;
    this.fleets = cfg.fleets;
    this.identifier = new Identifier(cfg.agents);
    this.self = self.endpoints.map((e) => {
      const ip = parseIP(e.host);
      // A name or a wildcard listen address cannot be pinned to one address: fail closed.
      const any = ip === null || (ip.family === 4 ? ip.v === 0 : ip.v === 0n);
      return {
        ip: any ? null : ip,
        port: e.port,
        loopback: ip !== null && classify(ip).class === "loopback",
      };
    });
    const global = new RuleIndex("global", cfg);
    const tiers = new Map(Object.entries(cfg.tiers).map(([n, t]) => [n, new RuleIndex(`tier:${n}`, t)]));
    const fleets = new Map(Object.entries(cfg.fleets).map(([n, f]) => [n, new RuleIndex(`fleet:${n}`, f)]));
    for (const [name, f] of Object.entries(cfg.fleets)) if (f.mode) this.fleetModes.set(name, f.mode);
    for (const a of cfg.agents) this.compileAgent(a, global, tiers, fleets, cfg);
  }

  private compileAgent(
    a: AgentConfig,
    global: RuleIndex,
    tiers: Map<string, RuleIndex>,
    fleets: Map<string, RuleIndex>,
    cfg: ShieldConfig,
  ): void {
    const agent = this.identifier.agent(a.id) as Agent;
    const tier = a.tier !== undefined ? tiers.get(a.tier) : undefined;
    const fleet = a.fleet !== undefined ? fleets.get(a.fleet) : undefined;
    if ((a.tier !== undefined && !tier) || (a.fleet !== undefined && !fleet)) {
      throw new Error(`agent ${a.id}: tier or fleet is not defined`);
    }
    const own = new RuleIndex(`agent:${a.id}`, a);
    const shared = this.profile(`${a.tier ?? ""}\u0000${a.fleet ?? ""}`, [global, tier, fleet]);
    const levels = [...shared, own].filter((l) => !l.empty);
    const budgets: BudgetLimit[] = [];
    const withBudget = (scope: string, b: BudgetConfig | undefined) => {
      if (b) budgets.push(Object.freeze({ scope, ...b }));
    };
    withBudget("global", cfg.budget);
    if (a.tier !== undefined) withBudget(`tier:${a.tier}`, cfg.tiers[a.tier]?.budget);
    if (a.fleet !== undefined) withBudget(`fleet:${a.fleet}`, this.fleets[a.fleet]?.budget);
    withBudget(`agent:${a.id}`, a.budget);
    this.agents.set(a.id, {
      agent,
      levels,
      fleet: a.fleet !== undefined ? this.fleets[a.fleet] : undefined,
      budgets: budgets.length > 0 ? Object.freeze(budgets) : NO_BUDGETS,
    });
    if (a.mode) this.agentModes.set(a.id, a.mode);
  }

  /**
   * Agents of one tier and fleet share one merged index of the global, tier and fleet rules, so a
   * decision costs one lookup pass instead of one per level. Merging copies the global rules per
   * (tier, fleet) pair; past a memory budget the levels stay separate, which decides the same.
   */
  private profile(key: string, parts: Array<RuleIndex | undefined>): RuleIndex[] {
    const cached = this.profiles.get(key);
    if (cached) return cached;
    const present = parts.filter((l): l is RuleIndex => l !== undefined && !l.empty);
    const size = present.reduce((n, l) => n + l.size, 0);
    let levels = present;
    if (present.length > 1 && this.mergedRules + size <= MERGE_BUDGET) {
      this.mergedRules += size;
      levels = [RuleIndex.merge(present.map((l) => l.level).join("+"), present)];
    }
    this.profiles.set(key, levels);
    return levels;
  }

  /** Compile once per config; throws on a config that did not come through parseShieldConfig. */
  static compile(cfg: ShieldConfig, self: { endpoints: Endpoint[] }): Policy {
    return new Policy(cfg, self);
  }

  identify(sourceAddress: string, basic?: { user: string; pass: string }): Agent | null {
    return this.identifier.identify(sourceAddress, basic);
  }

  /** Effective mode: lockdown anywhere (global, fleet, agent) wins, then audit, then enforce. */
  modeOf(agent: Agent): Mode {
    const c = this.agents.get(agent.id);
    return c === undefined ? this.globalMode : this.modeOfCompiled(c);
  }

  private modeOfCompiled(c: Compiled): Mode {
    let m = this.globalMode;
    if (m === "lockdown" || (this.fleetModes.size === 0 && this.agentModes.size === 0)) return m;
    const f = c.agent.fleet !== undefined ? this.fleetModes.get(c.agent.fleet) : undefined;
    if (f !== undefined && RANK[f] > RANK[m]) m = f;
    const a = this.agentModes.get(c.agent.id);
    if (a !== undefined && RANK[a] > RANK[m]) m = a;
    return m;
  }

  /** Change a mode at run time (admin API). `null` removes a fleet's or agent's own mode. */
  setMode(scope: ModeScope, mode: Mode | null): void {
    if ("global" in scope) {
      if (mode === null) throw new Error("the global mode cannot be removed; set enforce, audit or lockdown");
      this.globalMode = mode;
    } else if ("fleet" in scope) {
      if (!Object.hasOwn(this.fleets, scope.fleet)) throw new Error(`unknown fleet "${scope.fleet}"`);
      if (mode === null) this.fleetModes.delete(scope.fleet);
      else this.fleetModes.set(scope.fleet, mode);
    } else {
      if (!this.agents.has(scope.agent)) throw new Error(`unknown agent "${scope.agent}"`);
      if (mode === null) this.agentModes.delete(scope.agent);
      else this.agentModes.set(scope.agent, mode);
    }
  }

  /** What the agent may send per window, one entry per level that sets a budget; often none. */
  budgets(agent: Agent): readonly BudgetLimit[] {
    return this.agents.get(agent.id)?.budgets ?? NO_BUDGETS;
  }

  /** The configured agent by id (the proxy logs fleet and tier from it). */
  agent(id: string): Agent | null {
    return this.agents.get(id)?.agent ?? null;
  }

  /**
   * May this agent go to this destination? Names and IP literals against the rules of every
   * level; a deny anywhere beats an allow anywhere; nothing matching is a deny. Audit mode turns
   * a rule deny into an audited allow; lockdown denies everything.
   */
  decide(agent: Agent, target: Target): Decision {
    const c = this.agents.get(agent.id);
    if (c === undefined) return refuse("enforce", null, `unknown agent "${agent.id}"`);
    const mode = this.modeOfCompiled(c);
    if (mode === "lockdown") return refuse(mode, null, LOCKDOWN_REASON);
    const ip = ipOf(target);
    if (ip !== null) {
      if (this.isSelf(ip, target.port))
        return refuse(mode, null, `${target.host}:${target.port} is the shield's own endpoint`);
      if (isThisHost(ip)) return refuse(mode, null, thisHostReason(target.host));
    }
    const out = reset(this.scratch);
    const levels = c.levels;
    for (let i = 0; i < levels.length; i++) {
      (levels[i] as RuleIndex).matchTarget(target, ip, out);
      if (out.deny !== null) break;
    }
    const rule = out.deny ?? out.allow;
    if (rule !== null) return mode === "audit" ? rule.audit : rule.enforce;
    return mode === "audit" ? DEFAULT_AUDIT : DEFAULT_DENY;
  }

  /**
   * Network safety for one resolved address (the proxy calls it for every address of a name, and
   * for IP literals). Refused, in this order and whatever the mode (audit never opens these):
   * the shield's own endpoints; this host (0.0.0.0/8, ::, and forms carrying them), whatever
   * the rules say; addresses under a CIDR deny rule; another agent's source address
   * unless both are in one fleet with `isolation: fleet`; loopback, private, link-local, CGNAT,
   * ULA, multicast, broadcast and reserved addresses (IPv6 forms that embed IPv4
   * judged by the embedded address) unless a CIDR allow rule at some level covers the address.
   */
  checkAddress(agent: Agent, target: Target, address: string): Decision {
    const c = this.agents.get(agent.id);
    if (c === undefined) return refuse("enforce", null, `unknown agent "${agent.id}"`);
    const mode = this.modeOfCompiled(c);
    if (mode === "lockdown") return refuse(mode, null, LOCKDOWN_REASON);
    const ip = parseSource(address);
    if (ip === null) return refuse(mode, null, `resolver returned "${address}", which is not an IP address`);
    const text = formatIP(ip);
    // An IPv6 form that carries an IPv4 address reaches that address through a translator, so
    // every check below applies to the carried addresses as well as to the IPv6 one.
    const carried = embeddedIPv4(ip);
    const all = carried.length === 0 ? [ip] : [ip, ...carried];
    const port = target.port;
    for (const a of all) {
      if (this.isSelf(a, port))
        return refuse(mode, null, `${formatIP(a)}:${port} is the shield's own endpoint`);
    }
    // Whatever a rule says: a CIDR that covers 0.0.0.0/8 or :: was meant for the internet.
    if (isThisHost(ip)) return refuse(mode, null, thisHostReason(text));
    for (const a of all) {
      const deny = this.matchAddress(c, a, port).deny;
      if (deny !== null) return refuse(mode, deny.label, `${formatIP(a)} matched ${deny.label}`);
    }
    for (const a of all) {
      const owners = this.identifier.owners(a).filter((o) => o.id !== agent.id);
      if (owners.length === 0) continue;
      const shared =
        c.fleet?.isolation === "fleet" &&
        owners.every((o) => o.fleet !== undefined && o.fleet === c.agent.fleet);
      if (!shared) {
        return refuse(mode, null, `${formatIP(a)} belongs to agent ${owners[0]?.id} and fleets are isolated`);
      }
      const rule = `fleet:${c.agent.fleet} isolation fleet`;
      return { verdict: "allow", audited: false, mode, rule, reason: `${text} is a fleet-mate (${rule})` };
    }
    const cls = classify(ip);
    const own = this.matchAddress(c, ip, port).allow;
    if (cls.class === "public") {
      return {
        verdict: "allow",
        audited: false,
        mode,
        rule: own?.label ?? null,
        reason: `${text} is public`,
      };
    }
    const what =
      cls.embedded !== undefined
        ? `${text} embeds ${cls.embedded} (${cls.via}), which is ${cls.class} (${cls.range})`
        : `${text} is ${cls.class} (${cls.range})`;
    // An allow CIDR opens the address itself, or every non-public address it carries.
    let exempt = own;
    if (exempt === null && carried.length > 0) {
      for (const a of carried) {
        if (classify(a).class === "public") continue;
        exempt = this.matchAddress(c, a, port).allow;
        if (exempt === null) break;
      }
    }
    if (exempt !== null) {
      return {
        verdict: "allow",
        audited: false,
        mode,
        rule: exempt.label,
        reason: `${what}; ${exempt.label}`,
      };
    }
    return refuse(mode, null, what);
  }

  /** CIDR and address rules of every level of the agent, for one address. */
  private matchAddress(c: Compiled, ip: IP, port: number): MatchResult {
    const out: MatchResult = { deny: null, allow: null };
    for (const level of c.levels) {
      level.matchIP(ip, port, out);
      if (out.deny !== null) break;
    }
    return out;
  }

  private isSelf(ip: IP, port: number): boolean {
    let local: boolean | null = null;
    for (const s of this.self) {
      if (s.port !== port) continue;
      if (s.ip === null) return true;
      if (s.ip.family === ip.family && s.ip.v === ip.v) return true;
      if (s.loopback && (local ??= isThisHost(ip))) return true;
    }
    return false;
  }
}

/** Why 0.0.0.0/8, :: and the forms that carry them are refused, in the log's words. */
export function thisHostReason(address: string): string {
  return `${address} is this host (0.0.0.0/8 or ::, which Linux connects to the shield's own machine): never dialled, whatever the rules say`;
}
const DEFAULT_DENY: Decision = Object.freeze(refuse("enforce", null, DEFAULT_REASON));
const DEFAULT_AUDIT: Decision = Object.freeze({
  verdict: "allow",
  audited: true,
  mode: "audit",
  rule: null,
  reason: `audit: ${DEFAULT_REASON}`,
});

function reset(m: MatchResult): MatchResult {
  m.deny = null;
  m.allow = null;
  return m;
}

function refuse(mode: Mode, rule: string | null, reason: string): Decision {
  return { verdict: "deny", audited: false, mode, rule, reason };
}
