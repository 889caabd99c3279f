/**
 * The one log record of each request or tunnel: filled in as the request is read, decided and
 * relayed, and emitted once, at its end.
 */
import type { Admission } from "../admission/index.js";
import type { Outcome } from "../policy/outcome.js";
import type { Agent, LogSink, Target } from "../types.js";

/** Builds the one log record of a request; `end` emits it once, later calls are ignored. */
export class RequestLogger {
  agentId: string | null = null;
  fleet: string | null = null;
  tier: string | null = null;
  host = "";
  port = 0;
  path: string | null = null;
  upstreamAddress: string | null = null;
  private done = false;

  constructor(
    private readonly sink: LogSink,
    readonly ts: number,
    readonly sourceAddress: string,
    private readonly method: string,
  ) {}

  agent(agent: Agent | null): void {
    if (!agent) return;
    this.agentId = agent.id;
    this.fleet = agent.fleet ?? null;
    this.tier = agent.tier ?? null;
  }

  target(target: Target): void {
    this.host = target.host;
    this.port = target.port;
  }

  /** Who asked, for what, and the address admission checked for dialling. */
  admitted(a: Admission): void {
    this.agent(a.agent);
    if (a.target) this.target(a.target);
    this.path = a.path;
    if (a.ok) this.upstreamAddress = a.address;
  }

  end(outcome: Outcome, bytesUp = 0, bytesDown = 0): void {
    if (this.done) return;
    this.done = true;
    this.sink.append({
      ts: this.ts,
      agent: this.agentId,
      fleet: this.fleet,
      tier: this.tier,
      sourceAddress: this.sourceAddress,
      method: this.method,
      host: this.host,
      port: this.port,
      path: this.path,
      decision: outcome.decision,
      rule: outcome.rule,
      reason: outcome.reason,
      upstreamAddress: this.upstreamAddress,
      bytesUp,
      bytesDown,
      durationMs: Date.now() - this.ts,
    });
  }
}
