/**
 * The one path that decides whether a request may go. A plain HTTP request, a CONNECT tunnel, a
 * WebSocket upgrade, `shield check` and the admin API's checks all come here, and nothing else
 * makes these decisions, so what the shield does and what it says it would do cannot drift:
 *
 *   who is calling (credentials and source address, or an agent named by an operator)
 *   -> the request target, split and normalised
 *   -> modes and rules (policy.decide)
 *   -> budgets
 *   -> one resolution, every answer checked (policy.checkAddress), one address to dial.
 *
 * The answer is a refusal (status, and the log's decision, rule and reason) or an admitted
 * request (agent, target, decision, the checked address). Dialling, relaying and logging are the
 * caller's. An IP literal is decided without leaving the current turn of the event loop: the
 * answer is a promise only when a name must be looked up.
 */
import { checkAnswers, resolveChecked, type CheckedAddress, type Resolver } from "../net/resolve.js";
import { PORT_REQUIRED, parseTarget } from "../policy/normalize.js";
import { UNKNOWN_AGENT_REASON, combined, outcomeOf, type Outcome } from "../policy/outcome.js";
import type { Agent, BudgetLimit, Decision, Target } from "../types.js";
import { overrunReason, overrunRule, type Overrun } from "./budget.js";
import { splitAbsoluteForm } from "./request-target.js";

/** What admission asks of the policy; `Policy` satisfies it, and the admin API wraps it. */
export interface AdmissionPolicy {
  identify(sourceAddress: string, basic?: { user: string; pass: string }): Agent | null;
  decide(agent: Agent, target: Target): Decision;
  checkAddress(agent: Agent, target: Target, address: string): Decision;
  /** What the agent may send per window; the proxy reads it again for every chunk sent. */
  budgets(agent: Agent): readonly BudgetLimit[];
}

/**
 * Who asks: a connection (its source address, and its proxy credentials if it sent any), or an
 * operator asking on an agent's behalf (`shield check`, the admin API).
 */
export type Caller = { source: string; basic?: { user: string; pass: string } } | { agent: Agent };

export interface AdmissionRequest {
  kind: "http" | "connect" | "upgrade";
  /** The request target as sent: an absolute-form URL, or for CONNECT an authority. */
  target: string;
  caller: Caller;
  /** Why the front could not tell where this request ends; such a request is refused first. */
  ambiguous?: string | null;
  /** Bytes of the head that go upstream (plain and upgrade), asked only of agents with budgets. */
  headBytes?: () => number;
}

/** Budgets at admission: the proxy counts what it admits; a check only looks. */
export interface BudgetGate {
  admit(agent: string, limits: readonly BudgetLimit[], headBytes: number, enforce: boolean): Overrun | null;
}

/** One resolved address and what the checks said of it. */
export interface AddressVerdict {
  address: string;
  decision: Outcome["decision"];
  rule: string | null;
  reason: string;
}

interface Common {
  /** Null when nobody could be identified (407, or a request refused before identification mattered). */
  agent: Agent | null;
  /** The normalised destination; null when the target could not be read. */
  target: Target | null;
  /** The authority as the agent wrote it (the Host sent upstream). */
  authority: string | null;
  /** Path without the query of a plain request or upgrade; null for CONNECT. */
  path: string | null;
  query: string;
  /** What the log records. */
  outcome: Outcome;
  /**
   * Bytes of a plain request's or upgrade's head counted as upload: once the rules let it
   * through and a spent budget did not stop it, whatever happens to it next (as budgets count).
   */
  upload: number;
  /**
   * With `trace`: every address judged, in the resolver's order, up to the first refused; null
   * when none was (refused by name first, or judged without a lookup).
   */
  addresses: AddressVerdict[] | null;
}

export interface Refusal extends Common {
  ok: false;
  /**
   * 403: the policy or a budget refused (the shield's `refusal` setting says whether the agent
   * gets a 403 or a reset); 407: no agent for these credentials; 400: a request or target the
   * shield cannot read; 502: the name did not resolve.
   */
  status: 400 | 403 | 407 | 502;
  /** Why the name did not resolve (502). */
  unresolved: string | null;
}

export interface Admitted extends Common {
  ok: true;
  agent: Agent;
  target: Target;
  /** The name decision, after budgets (the outcome combines it with the address check). */
  decision: Decision;
  /** The one address to dial; null when names were judged without a lookup (a check without a resolver). */
  address: string | null;
}

export type Admission = Admitted | Refusal;

export interface AdmissionOptions {
  /** Looks names up; null judges names only (a check that does not resolve). */
  resolver: Resolver | null;
  /** Budgets at admission; null leaves them out (a check of a file, where nothing was counted). */
  budgets: BudgetGate | null;
  /** Seconds from the name decision to the last address check, for the latency histogram. */
  onLatency?: (seconds: number) => void;
}

const AUTH_REQUIRED: Outcome = {
  decision: "denied",
  rule: null,
  reason: UNKNOWN_AGENT_REASON,
};

/**
 * The answer as it is filled in, step by step: one object of one shape per request (the data
 * path reads its fields on every request, and objects spread together field by field would each
 * take a shape of their own).
 */
class Answer {
  ok = false;
  status: Refusal["status"] = 400;
  agent: Agent | null;
  target: Target | null = null;
  authority: string | null = null;
  path: string | null = null;
  query = "";
  outcome: Outcome = AUTH_REQUIRED;
  upload = 0;
  addresses: AddressVerdict[] | null = null;
  unresolved: string | null = null;
  decision: Decision | null = null;
  address: string | null = null;

  constructor(agent: Agent | null) {
    this.agent = agent;
  }

  refuse(status: Refusal["status"], outcome: Outcome): Refusal {
    this.status = status;
    this.outcome = outcome;
    return this as Refusal;
  }

  admit(decision: Decision, outcome: Outcome, address: string | null): Admitted {
    this.ok = true;
    this.decision = decision;
    this.outcome = outcome;
    this.address = address;
    return this as unknown as Admitted;
  }
}

export class Admissions {
  constructor(private readonly opts: AdmissionOptions) {}

  /**
   * Decide `req` under `policy` (the one in force when the request arrived: a reload in between
   * never judges one request by two configs). `trace` collects every address judged.
   */
  admit(policy: AdmissionPolicy, req: AdmissionRequest, trace = false): Admission | Promise<Admission> {
    const { caller } = req;
    const agent = "agent" in caller ? caller.agent : policy.identify(caller.source, caller.basic);
    const a = new Answer(agent);
    // The rest of such a connection cannot be trusted to be split the way the client meant.
    if (req.ambiguous) return a.refuse(400, refusal(`refused: ${req.ambiguous}`));
    if (req.kind === "connect") {
      a.authority = req.target;
    } else {
      const form = splitAbsoluteForm(req.target);
      if (!form) return a.refuse(400, refusal("refused: request target is not an absolute http URL"));
      a.authority = form.authority;
      a.path = form.path;
      a.query = form.query;
    }
    if (!agent) {
      // Nobody known asked, but the log still names the host they asked for.
      try {
        a.target = parseTarget(a.authority, req.kind === "connect" ? PORT_REQUIRED : 80);
      } catch {
        // A target that does not parse is logged as it is: the 407 comes first.
      }
      return a.refuse(407, AUTH_REQUIRED);
    }
    let target: Target;
    try {
      // A CONNECT names its port (RFC 9110 9.3.6); a URL without one means 80.
      target = parseTarget(a.authority, req.kind === "connect" ? PORT_REQUIRED : 80);
    } catch (err) {
      return a.refuse(400, refusal(`refused: bad target: ${messageOf(err)}`));
    }
    a.target = target;
    const started = this.opts.onLatency ? performance.now() : 0;
    let decision = policy.decide(agent, target);
    if (decision.verdict === "allow") {
      decision = this.budget(policy, agent, decision, req);
      // A CONNECT's head does not go upstream; a plain request's and an upgrade's do.
      if (decision.verdict === "allow" && req.kind !== "connect" && req.headBytes) a.upload = req.headBytes();
    }
    if (decision.verdict !== "allow") {
      this.latency(started);
      return a.refuse(403, outcomeOf(decision));
    }
    const judged: AddressVerdict[] | null = trace ? [] : null;
    const check = (address: string): Decision => {
      const v = policy.checkAddress(agent, target, address);
      judged?.push({ address, ...outcomeOf(v) });
      return v;
    };
    if (target.ip) return this.settle(a, judged, decision, checkAnswers(target, [target.ip], check), started);
    const { resolver } = this.opts;
    if (resolver === null) {
      this.latency(started);
      return a.admit(decision, outcomeOf(decision), null);
    }
    return resolveChecked(target, check, resolver).then((checked) =>
      this.settle(a, judged, decision, checked, started),
    );
  }

  private settle(
    a: Answer,
    addresses: AddressVerdict[] | null,
    decision: Decision,
    checked: CheckedAddress,
    started: number,
  ): Admission {
    this.latency(started);
    a.addresses = addresses;
    if (checked.ok) return a.admit(decision, combined(decision, checked.decision), checked.address);
    if (checked.refused) return a.refuse(403, outcomeOf(checked.decision));
    // Allowed, but nowhere to go: the record keeps the rule that allowed it, and says why it failed.
    a.unresolved = checked.reason;
    return a.refuse(502, { ...outcomeOf(decision), reason: `${decision.reason}; ${checked.reason}` });
  }

  /**
   * A request the rules allow, against the agent's budgets: refused when one is spent (audited
   * and let through in audit mode). Agents without budgets pass untouched.
   */
  private budget(policy: AdmissionPolicy, agent: Agent, decision: Decision, req: AdmissionRequest): Decision {
    const gate = this.opts.budgets;
    if (gate === null) return decision;
    const limits = policy.budgets(agent);
    if (limits.length === 0) return decision;
    const enforce = decision.mode !== "audit";
    // A CONNECT's head does not go upstream; a plain request's and an upgrade's do.
    const bytes = req.kind !== "connect" && req.headBytes ? req.headBytes() : 0;
    const over = gate.admit(agent.id, limits, bytes, enforce);
    // In audit mode a request the rules would deny is recorded for that, not for its budget.
    if (over === null || decision.audited) return decision;
    const reason = overrunReason(over);
    return enforce
      ? {
          ...decision,
          verdict: "deny",
          audited: false,
          rule: overrunRule(over),
          reason: `refused: ${reason}`,
        }
      : { ...decision, audited: true, rule: overrunRule(over), reason: `audit: ${reason}` };
  }

  private latency(started: number): void {
    if (this.opts.onLatency) this.opts.onLatency((performance.now() - started) / 1000);
  }
}

function refusal(reason: string): Outcome {
  return { decision: "denied", rule: null, reason };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
