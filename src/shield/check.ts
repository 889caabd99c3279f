/**
 * What the shield would do with a destination, asked without sending it: the request an agent
 * would send, decided on the proxy's own admission path (target, modes, rules, budgets, every
 * address), for one agent, with the mode switches saved through the admin API applied as the
 * shield applies them at start. An operator editing rules asks "may scout reach
 * api.openai.com, and by which rule?" here instead of from an agent.
 */
import { setImmediate as yieldToIo } from "node:timers/promises";
import { ClawguardError } from "../errors.js";
import type { ShieldConfig } from "./config.js";
import { loadModeOverrides, NO_OVERRIDES, withOverrides } from "./admin/modes-file.js";
import { Admissions, type AddressVerdict, type Admission, type BudgetGate } from "./admission/index.js";
import type { BudgetUse } from "./admission/budget.js";
import type { Resolver } from "./net/resolve.js";
import { HostPortError, splitHostPort } from "../net/hostport.js";
import { Policy, parseTarget } from "./policy/index.js";
import { TargetError } from "./policy/normalize.js";
import type { Outcome } from "./policy/outcome.js";
import { selfEndpoints } from "./server.js";
import type { Agent, BudgetLimit, Mode } from "./types.js";

export type { AddressVerdict };

/** A destination as an agent would ask for it. */
export interface Destination {
  /** What was given. */
  given: string;
  /** "http": a plain request through the proxy; "connect": a tunnel (https, wss, host:port). */
  kind: "http" | "connect";
  authority: string;
  defaultPort: number;
  /** The path of a plain request, else null. */
  path: string | null;
}

export class DestinationError extends ClawguardError {
  constructor(given: string, why: string) {
    super("CG_DESTINATION_INVALID", `destination "${given}": ${why}`);
  }
}

/**
 * `http://host[:port]/path` and `ws://` are plain requests; `https://` and `wss://` are tunnels
 * to port 443 unless they name one, as an agent's HTTPS goes through CONNECT; a bare
 * `host[:port]` is a CONNECT authority, 443 by default. The authority is taken as written, not
 * through `new URL`, which would repair it before the shield's own normaliser could see it.
 */
export function parseDestination(given: string): Destination {
  const text = given.trim();
  const url = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(text);
  if (url) {
    const scheme = url[1]!.toLowerCase();
    const authority = url[2]!;
    if (!authority) throw new DestinationError(given, "no host");
    if (scheme === "http" || scheme === "ws")
      return { given, kind: "http", authority, defaultPort: 80, path: url[3] || "/" };
    if (scheme === "https" || scheme === "wss")
      return { given, kind: "connect", authority, defaultPort: 443, path: null };
    throw new DestinationError(given, `the shield carries http, https, ws and wss, not ${scheme}`);
  }
  if (!text || /[/?#\s]/.test(text))
    throw new DestinationError(given, "give a URL (http://, https://) or a host[:port] as CONNECT takes it");
  return { given, kind: "connect", authority: text, defaultPort: 443, path: null };
}

/**
 * `parseDestination`, and the shield's own reading of its host and port too. Where a decision
 * is expected (a policy test), a destination the shield cannot read would come out "denied"
 * (bad target) and make a denied expectation pass vacuously: it is refused instead.
 */
export function readableDestination(given: string): Destination {
  const d = parseDestination(given);
  try {
    parseTarget(d.authority, d.defaultPort);
  } catch (e) {
    if (!(e instanceof TargetError)) throw e;
    throw new DestinationError(given, e.reason);
  }
  return d;
}

export interface CheckResult {
  destination: string;
  kind: Destination["kind"];
  /** The normalised host and port the rules saw; null when the target could not be read. */
  host: string | null;
  port: number | null;
  path: string | null;
  /** What the log would record. */
  decision: Outcome["decision"];
  rule: string | null;
  reason: string;
  /**
   * Every address judged, in the resolver's order, up to the first one refused; null when the
   * name was not looked up (no `resolver`, or refused by name first).
   */
  addresses: AddressVerdict[] | null;
  /** The one address the shield would dial, when the check got that far. */
  dial: string | null;
  /** Why the name could not be resolved; the shield answers 502 (the policy allowed it). */
  unresolved: string | null;
}

/**
 * The request an agent would send for `d`: a plain request's absolute-form URL, or a CONNECT
 * authority with its port (an agent's client always writes one: 443 unless the URL named one).
 */
function requestOf(d: Destination): { kind: "http" | "connect"; target: string } {
  if (d.kind === "http") return { kind: "http", target: `http://${d.authority}${d.path ?? "/"}` };
  let port: number | null = null;
  try {
    port = splitHostPort(d.authority).port;
  } catch (e) {
    // Unreadable: admission refuses it as the proxy would, naming why.
    if (!(e instanceof HostPortError)) throw e;
    return { kind: "connect", target: d.authority };
  }
  return { kind: "connect", target: port === null ? `${d.authority}:${d.defaultPort}` : d.authority };
}

/** An admission as `shield check` reports it. */
function resultOf(d: Destination, a: Admission): CheckResult {
  return {
    destination: d.given,
    kind: d.kind,
    host: a.target?.host ?? null,
    port: a.target?.port ?? null,
    path: d.path,
    ...a.outcome,
    addresses: a.addresses,
    dial: a.ok ? a.address : null,
    unresolved: a.ok ? null : a.unresolved,
  };
}

export interface Checker {
  agent: Agent;
  mode: Mode;
  check(destination: Destination): Promise<CheckResult>;
}

/**
 * A checker for one agent: `agentId`, or the agent that `source` identifies without
 * credentials. `resolver`: look names up and judge their addresses as the proxy does (null:
 * judge names only; IP literals are always judged, as they need no lookup).
 */
export function checker(
  cfg: ShieldConfig,
  who: { agentId?: string; source?: string },
  resolver: Resolver | null,
): Checker {
  // From a file nothing was counted yet: budgets hold no one back.
  return policyChecker(compilePolicy(cfg), who, resolver, null);
}

/** The policy the shield would compile from `cfg`, its own listener counted as its own. */
export function compilePolicy(cfg: ShieldConfig): Policy {
  return Policy.compile(cfg, { endpoints: selfEndpoints(cfg, cfg.listen.port) });
}

/** One agent's answers. */
export interface AgentAnswer {
  agent: Agent;
  mode: Mode;
  results: CheckResult[];
  /** Asked about one agent: the budgets of its levels (see BudgetLimit). */
  budgets?: readonly BudgetLimit[];
  /**
   * Asked of the running shield: the agent's budget nearest to running out, or null without
   * budgets. Spent, it refuses every request whatever the rules decide.
   */
  budget?: BudgetUse | null;
}

/** Who is asked about: one agent by id, the agent a source address identifies, or every agent. */
export type Asker = { agent: string } | { source: string } | { all: true };

/** Wraps each check: the admin API bounds its lookups with it. */
type Run = (check: () => Promise<CheckResult>) => Promise<CheckResult>;

/**
 * One asker's answers on one compiled policy: every agent of `ids` for `all`, otherwise the one
 * agent, with the budgets of its levels. The command's file check and the admin API both ask
 * this way.
 */
export async function askPolicy(
  policy: Policy,
  ids: readonly string[],
  who: Asker,
  destinations: readonly Destination[],
  resolver: Resolver | null,
  budgets: BudgetGate | null,
  run: Run = (check) => check(),
): Promise<AgentAnswer[]> {
  if ("all" in who) return checkEveryAgent(policy, ids, destinations, resolver, budgets, run);
  const ck = policyChecker(
    policy,
    "agent" in who ? { agentId: who.agent } : { source: who.source },
    resolver,
    budgets,
  );
  // Looked up side by side: a slow name does not make the others wait.
  const results = await Promise.all(destinations.map((d) => run(() => ck.check(d))));
  return [{ agent: ck.agent, mode: ck.mode, budgets: policy.budgets(ck.agent), results }];
}

/**
 * Every agent of `ids` asked about every destination, on one compiled policy: "who may reach
 * this?". `run` wraps each check (the admin API bounds its lookups with it).
 */
export async function checkEveryAgent(
  policy: Policy,
  ids: readonly string[],
  destinations: readonly Destination[],
  resolver: Resolver | null,
  budgets: BudgetGate | null,
  run: Run = (check) => check(),
): Promise<AgentAnswer[]> {
  const answers: AgentAnswer[] = [];
  for (const id of ids) {
    const ck = policyChecker(policy, { agentId: id }, resolver, budgets);
    const results = await Promise.all(destinations.map((d) => run(() => ck.check(d))));
    answers.push({ agent: ck.agent, mode: ck.mode, results });
    // Checks that need no lookup never leave the microtask queue: between agents the event loop
    // serves I/O, so a fleet of thousands asked at once does not stall the proxy's traffic.
    await yieldToIo();
  }
  return answers;
}

/** No agent answers to what a check named: the field that named it, and why. */
export class CheckAgentError extends ClawguardError {
  constructor(
    readonly field: "agent" | "source",
    message: string,
  ) {
    super("CG_AGENT_UNKNOWN", message);
  }
}

/**
 * A checker on a compiled policy: the running shield's own (the admin API's check, with the
 * mode switches in force, the shield's resolver and a look at its budgets), or one compiled
 * from a file. `budgets` only looks: a check counts nothing.
 */
export function policyChecker(
  policy: Policy,
  who: { agentId?: string; source?: string },
  resolver: Resolver | null,
  budgets: BudgetGate | null,
): Checker {
  let agent: Agent | null;
  if (who.agentId !== undefined) {
    agent = policy.agent(who.agentId);
    if (!agent) throw new CheckAgentError("agent", `no agent "${who.agentId}" in the config`);
  } else if (who.source !== undefined) {
    agent = policy.identify(who.source);
    if (!agent)
      throw new CheckAgentError(
        "source",
        `no agent is known by source address ${who.source} alone (an agent with a token is asked for by its id)`,
      );
  } else {
    throw new CheckAgentError("agent", "which agent? pass --agent ID or --source ADDRESS");
  }
  const a = agent;
  const admissions = new Admissions({ resolver, budgets });
  return {
    agent: a,
    mode: policy.modeOf(a),
    async check(d: Destination): Promise<CheckResult> {
      const request = requestOf(d);
      return resultOf(d, await admissions.admit(policy, { ...request, caller: { agent: a } }, true));
    },
  };
}

/**
 * The config as the running shield decides with it: the mode switches saved through the admin
 * API applied. A state file that exists and cannot be read is an error, as it stops the shield:
 * a check that ignored a saved lockdown would answer for a shield that is not running.
 */
export async function effectiveConfig(cfg: ShieldConfig): Promise<{ cfg: ShieldConfig; switches: number }> {
  const saved = cfg.admin ? await loadModeOverrides(cfg.admin.stateFile) : NO_OVERRIDES;
  const switches =
    (saved.global !== null ? 1 : 0) + Object.keys(saved.fleets).length + Object.keys(saved.agents).length;
  return { cfg: withOverrides(cfg, saved), switches };
}

/** How many allow and deny rules the config holds, over every level. */
export function ruleCount(cfg: ShieldConfig): number {
  const sets = [cfg, ...Object.values(cfg.tiers), ...Object.values(cfg.fleets), ...cfg.agents];
  return sets.reduce((n, s) => n + s.allow.length + s.deny.length, 0);
}
