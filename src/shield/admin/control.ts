/**
 * The shield's run-time state as the operator sees and changes it: the policy in force, mode
 * overrides made through the API, the last reload, and per-agent traffic. The proxy talks to a
 * thin wrapper of the policy (to time decisions and note who was seen), and every log record
 * passes through `observe` on its way to the store, so counters and the live view come from
 * the same canonical records the audit log keeps.
 */
import { TrafficHistory } from "./traffic.js";
import { EventEmitter } from "node:events";
import type { Endpoint, ShieldConfig } from "../config.js";
import { scrubSecrets } from "../log/record.js";
import { Policy, parseTarget } from "../policy/index.js";
import { nearestToSpent, type BudgetUsage, type BudgetUse } from "../admission/budget.js";
import type { BudgetGate } from "../admission/index.js";
import type { ProxyPolicy, ShieldProxy } from "../proxy/index.js";
import type { Agent, LogRecord, Mode, Target } from "../types.js";
import { membershipRecords, type Authors } from "../membership.js";

export const MODES: readonly Mode[] = ["enforce", "audit", "lockdown"];
export type ModeScopeName = "global" | "fleet" | "agent";

export interface AgentTraffic {
  requests: number;
  bytesUp: number;
  bytesDown: number;
  allowed: number;
  denied: number;
  audited: number;
  lastSeen: number | null;
}

export interface ReloadResult {
  ok: boolean;
  /** ms since the epoch. */
  at: number;
  trigger: string;
  /** The validation or read error, with file and line; null when the reload applied. */
  error: string | null;
  /** Settings read only at start (listen, log, limits) that changed and wait for a restart. */
  restartNeeded: string[];
  /** Tunnels closed because the new policy no longer allows them. */
  tunnelsClosed: number;
}

export interface LiveDecision extends LogRecord {
  /** Sequence number of the live stream (not the log's record id). */
  seq: number;
}

export interface ControlOptions {
  cfg: ShieldConfig;
  proxy: ShieldProxy;
  /** The shield's own endpoints for a config (with the real ports once bound). */
  endpoints: (cfg: ShieldConfig) => Endpoint[];
  /** Called with the records of agents that joined, left or changed keys in an applied config. */
  onMembership?: (records: LogRecord[]) => void;
}

export class ShieldControl {
  readonly events = new EventEmitter();
  readonly startedAt = Date.now();
  private cfgNow: ShieldConfig;
  private policyNow: Policy;
  private readonly globalOverride: { mode: Mode | null } = { mode: null };
  private readonly fleetOverrides = new Map<string, Mode>();
  private readonly agentOverrides = new Map<string, Mode>();
  private readonly traffic = new Map<string, AgentTraffic>();
  private readonly totals = { allowed: 0, denied: 0, audited: 0, bytesUp: 0, bytesDown: 0 };
  /** The last hour, minute by minute, for the dashboard's charts and refused destinations. */
  readonly history = new TrafficHistory();
  private seq = 0;
  lastReload: ReloadResult | null = null;

  constructor(private readonly opts: ControlOptions) {
    this.cfgNow = opts.cfg;
    this.policyNow = Policy.compile(opts.cfg, { endpoints: opts.endpoints(opts.cfg) });
    this.events.setMaxListeners(0);
  }

  get cfg(): ShieldConfig {
    return this.cfgNow;
  }

  get policy(): Policy {
    return this.policyNow;
  }

  /** What the proxy calls: the current policy, noting when each agent was last seen. */
  readonly proxyPolicy: ProxyPolicy = {
    identify: (source, basic) => {
      const agent = this.policyNow.identify(source, basic);
      if (agent) this.trafficOf(agent.id).lastSeen = Date.now();
      return agent;
    },
    decide: (agent, target) => {
      this.trafficOf(agent.id).requests += 1;
      return this.policyNow.decide(agent, target);
    },
    checkAddress: (agent, target, address) => this.policyNow.checkAddress(agent, target, address),
    budgets: (agent) => this.policyNow.budgets(agent),
  };

  /** The proxy's budgets as a check sees them: what admission would answer, nothing counted. */
  readonly budgetGate: BudgetGate = {
    admit: (agent, limits, headBytes) => this.opts.proxy.budgets.peek(agent, limits, headBytes),
  };

  /** Count a log record and pass it to the live view; called for every record the proxy writes. */
  observe(record: LogRecord): void {
    this.history.record(record);
    this.totals[record.decision] += 1;
    this.totals.bytesUp += record.bytesUp;
    this.totals.bytesDown += record.bytesDown;
    if (record.agent !== null) {
      const t = this.trafficOf(record.agent);
      t[record.decision] += 1;
      t.bytesUp += record.bytesUp;
      t.bytesDown += record.bytesDown;
    }
    if (this.events.listenerCount("decision") > 0) {
      const live: LiveDecision = { ...record, reason: scrubSecrets(record.reason), seq: ++this.seq };
      this.events.emit("decision", live);
    }
  }

  private trafficOf(id: string): AgentTraffic {
    let t = this.traffic.get(id);
    if (!t) {
      t = { requests: 0, bytesUp: 0, bytesDown: 0, allowed: 0, denied: 0, audited: 0, lastSeen: null };
      this.traffic.set(id, t);
    }
    return t;
  }

  /**
   * Install a new config: compile first (a config the policy rejects throws and changes
   * nothing), carry the API's mode overrides over, swap, then re-decide open tunnels.
   */
  apply(cfg: ShieldConfig, trigger: string, authors?: Authors): ReloadResult {
    const policy = Policy.compile(cfg, { endpoints: this.opts.endpoints(cfg) });
    const restartNeeded = startOnlyChanges(this.cfgNow, cfg);
    const before = this.cfgNow;
    const open = new Map<string, number>();
    for (const t of this.opts.proxy.tunnels.list())
      if (t.kind !== "http") open.set(t.agent, (open.get(t.agent) ?? 0) + 1);
    this.cfgNow = cfg;
    this.policyNow = policy;
    for (const f of [...this.fleetOverrides.keys()])
      if (!Object.hasOwn(cfg.fleets, f)) this.fleetOverrides.delete(f);
    for (const a of [...this.agentOverrides.keys()])
      if (policy.agent(a) === null) this.agentOverrides.delete(a);
    this.installModes();
    const tunnelsClosed = this.redecideTunnels();
    this.lastReload = { ok: true, at: Date.now(), trigger, error: null, restartNeeded, tunnelsClosed };
    const joinedOrLeft = membershipRecords(before, cfg, {
      at: this.lastReload.at,
      trigger,
      openTunnels: (id) => open.get(id) ?? 0,
      ...(authors ? { authors } : {}),
    });
    if (joinedOrLeft.length > 0) this.opts.onMembership?.(joinedOrLeft);
    return this.lastReload;
  }

  /** Note a reload that did not apply: the running policy stays as it was. */
  reloadFailed(trigger: string, error: string): ReloadResult {
    this.lastReload = { ok: false, at: Date.now(), trigger, error, restartNeeded: [], tunnelsClosed: 0 };
    return this.lastReload;
  }

  /**
   * Set (or with `null`, drop) the API's mode for a scope. Overrides survive reloads (and,
   * saved by the caller, restarts); the effective mode is still the strictest of global, fleet
   * and agent. Returns how many open tunnels were closed.
   */
  setMode(scope: ModeScopeName, id: string | undefined, mode: Mode | null): number {
    if (scope === "global") {
      this.globalOverride.mode = mode;
    } else if (scope === "fleet") {
      if (id === undefined || !Object.hasOwn(this.cfgNow.fleets, id))
        throw new ControlError(404, "id", `unknown fleet "${id ?? ""}"`);
      if (mode === null) this.fleetOverrides.delete(id);
      else this.fleetOverrides.set(id, mode);
    } else {
      if (id === undefined || this.policyNow.agent(id) === null)
        throw new ControlError(404, "id", `unknown agent "${id ?? ""}"`);
      if (mode === null) this.agentOverrides.delete(id);
      else this.agentOverrides.set(id, mode);
    }
    this.installModes();
    return this.redecideTunnels();
  }

  /**
   * Put back the switches saved by an earlier run (before the proxy serves), or the ones a shared
   * store holds now. Those for fleets or agents the config no longer has are dropped; their
   * names are returned.
   */
  restoreOverrides(o: Overrides): string[] {
    const dropped: string[] = [];
    // The whole set is replaced: a shared store's switches, read again, are all the switches.
    this.fleetOverrides.clear();
    this.agentOverrides.clear();
    this.globalOverride.mode = o.global;
    for (const [id, mode] of Object.entries(o.fleets)) {
      if (Object.hasOwn(this.cfgNow.fleets, id)) this.fleetOverrides.set(id, mode);
      else dropped.push(`fleet ${id}`);
    }
    for (const [id, mode] of Object.entries(o.agents)) {
      if (this.policyNow.agent(id) !== null) this.agentOverrides.set(id, mode);
      else dropped.push(`agent ${id}`);
    }
    this.installModes();
    this.redecideTunnels();
    return dropped;
  }

  private installModes(): void {
    const p = this.policyNow;
    const cfg = this.cfgNow;
    p.setMode({ global: true }, this.globalOverride.mode ?? cfg.mode);
    for (const name of Object.keys(cfg.fleets)) {
      p.setMode({ fleet: name }, this.fleetOverrides.get(name) ?? cfg.fleets[name]?.mode ?? null);
    }
    for (const a of cfg.agents) p.setMode({ agent: a.id }, this.agentOverrides.get(a.id) ?? a.mode ?? null);
  }

  /**
   * Ask the current policy again about every open tunnel and close those it now refuses. The
   * tracker knows the destination as the client named it; an IP literal is checked as an
   * address too, a name by its rules (its dialled address was checked when it opened).
   */
  redecideTunnels(): number {
    const policy = this.policyNow;
    return this.opts.proxy.tunnels.closeWhere((t) => {
      const agent = policy.agent(t.agent);
      if (agent === null) return true;
      let target: Target;
      try {
        target = parseTarget(t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`, t.port);
      } catch {
        return true;
      }
      if (policy.decide(agent, target).verdict !== "allow") return true;
      return (
        target.ip !== undefined && policy.checkAddress(agent, target, target.ip.address).verdict !== "allow"
      );
    });
  }

  modes(): {
    global: Mode;
    fleets: Record<string, Mode | null>;
    agents: Record<string, Mode>;
    overrides: Overrides;
  } {
    const cfg = this.cfgNow;
    const fleets: Record<string, Mode | null> = {};
    for (const [name, f] of Object.entries(cfg.fleets))
      fleets[name] = this.fleetOverrides.get(name) ?? f.mode ?? null;
    const agents: Record<string, Mode> = {};
    for (const a of cfg.agents) agents[a.id] = this.policyNow.modeOf(this.policyNow.agent(a.id) as Agent);
    return {
      global: this.globalOverride.mode ?? cfg.mode,
      fleets,
      agents,
      overrides: {
        global: this.globalOverride.mode,
        fleets: Object.fromEntries(this.fleetOverrides),
        agents: Object.fromEntries(this.agentOverrides),
      },
    };
  }

  /** Open CONNECT and WebSocket tunnels (in-flight plain HTTP exchanges are not tunnels). */
  openTunnels(): number {
    let n = 0;
    for (const t of this.opts.proxy.tunnels.list()) if (t.kind !== "http") n += 1;
    return n;
  }

  decisionTotals(): { allowed: number; denied: number; audited: number; bytesUp: number; bytesDown: number } {
    return { ...this.totals };
  }

  /** The agent's budgets with what it used of each now, and the one nearest to running out. */
  budgetsOf(agent: Agent): Pick<AgentView, "budgets" | "budgetUse"> {
    const budgets = this.opts.proxy.budgets.usage(agent.id, this.policyNow.budgets(agent));
    return { budgets, budgetUse: nearestToSpent(budgets) };
  }

  agents(): AgentView[] {
    const open = new Map<string, number>();
    const inFlight = new Map<string, number>();
    for (const t of this.opts.proxy.tunnels.list()) {
      const m = t.kind === "http" ? inFlight : open;
      m.set(t.agent, (m.get(t.agent) ?? 0) + 1);
    }
    return this.cfgNow.agents.map((a) => {
      const t = this.traffic.get(a.id);
      const agent = this.policyNow.agent(a.id) as Agent;
      return {
        id: a.id,
        fleet: a.fleet ?? null,
        tier: a.tier ?? null,
        mode: this.policyNow.modeOf(agent),
        modeOverride: this.agentOverrides.get(a.id) ?? null,
        lastSeen: t?.lastSeen ?? null,
        requests: t?.requests ?? 0,
        allowed: t?.allowed ?? 0,
        denied: t?.denied ?? 0,
        audited: t?.audited ?? 0,
        bytesUp: t?.bytesUp ?? 0,
        bytesDown: t?.bytesDown ?? 0,
        openTunnels: open.get(a.id) ?? 0,
        httpInFlight: inFlight.get(a.id) ?? 0,
        ...this.budgetsOf(agent),
      };
    });
  }
}

export interface Overrides {
  global: Mode | null;
  fleets: Record<string, Mode>;
  agents: Record<string, Mode>;
}

export interface AgentView {
  id: string;
  fleet: string | null;
  tier: string | null;
  /** The effective mode: the strictest of global, fleet and agent. */
  mode: Mode;
  modeOverride: Mode | null;
  lastSeen: number | null;
  requests: number;
  allowed: number;
  denied: number;
  audited: number;
  bytesUp: number;
  bytesDown: number;
  /** CONNECT and WebSocket tunnels open now. */
  openTunnels: number;
  /** Plain HTTP exchanges in progress (a long download, say). */
  httpInFlight: number;
  /** Each budget of the agent's levels, with what it used in the current window. */
  budgets: BudgetUsage[];
  /** The budget nearest to running out, or null without budgets. */
  budgetUse: BudgetUse | null;
}

/** A refusal the admin API turns into an HTTP status with the field at fault. */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    readonly field: string | null,
    message: string,
  ) {
    super(message);
    this.name = "ControlError";
  }
}

function startOnlyChanges(a: ShieldConfig, b: ShieldConfig): string[] {
  const out: string[] = [];
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  if (!same(a.listen, b.listen)) out.push("listen");
  if (!same(a.admin, b.admin)) out.push("admin");
  if (!same(a.log, b.log)) out.push("log");
  if (!same(a.limits, b.limits)) out.push("limits");
  if (a.refusal !== b.refusal) out.push("refusal");
  if (!same(a.stripHeaders, b.stripHeaders)) out.push("strip_headers");
  if (a.httpServer !== b.httpServer) out.push("http_server");
  return out;
}
