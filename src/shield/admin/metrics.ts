/**
 * Prometheus metrics of the running shield, on a registry of its own (never the global one, so
 * two shields in one process do not mix their numbers).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { registerLogMetrics, type LogStats } from "../log/index.js";
import { budgetAction } from "../admission/budget.js";
import type { LogRecord } from "../types.js";
import { SHIELD_VERSION } from "../version.js";

export class ShieldMetrics {
  readonly registry = new Registry();
  private readonly decisions: Counter<"decision">;
  private readonly bytes: Counter<"direction">;
  private readonly latency: Histogram;
  private readonly overruns: Counter<"scope" | "action">;
  private readonly dns: Counter<"agent" | "answer">;
  private readonly reloads: Counter<"result">;

  constructor(openTunnels: () => number, logStats?: () => LogStats) {
    const registers = [this.registry];
    this.decisions = new Counter({
      name: "clawguard_shield_decisions_total",
      help: "Requests and tunnels decided, by result (allowed, denied, audited).",
      labelNames: ["decision"],
      registers,
    });
    for (const d of ["allowed", "denied", "audited"]) this.decisions.inc({ decision: d }, 0);
    this.bytes = new Counter({
      name: "clawguard_shield_bytes_total",
      help: "Bytes relayed upstream (up) and back (down), counted when a request or tunnel ends.",
      labelNames: ["direction"],
      registers,
    });
    this.bytes.inc({ direction: "up" }, 0);
    this.bytes.inc({ direction: "down" }, 0);
    new Gauge({
      name: "clawguard_shield_open_tunnels",
      help: "CONNECT and WebSocket tunnels open now.",
      registers,
      collect() {
        this.set(openTunnels());
      },
    });
    this.latency = new Histogram({
      name: "clawguard_shield_decision_seconds",
      help: "From the policy's answer for a name to the first resolved address judged (denials: the decision alone).",
      buckets: [0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.overruns = new Counter({
      name: "clawguard_shield_budget_overruns_total",
      help: "Requests refused, transfers cut and overruns audited because an agent's budget was spent, by the budget's level.",
      labelNames: ["scope", "action"],
      registers,
    });
    this.dns = new Counter({
      name: "clawguard_shield_dns_queries_total",
      help: "Queries the shield's resolver answered in gateway mode, by agent (empty: no agent) and answer.",
      labelNames: ["agent", "answer"],
      registers,
    });
    this.reloads = new Counter({
      name: "clawguard_shield_config_reloads_total",
      help: "Reloads of shield.yaml, by result: success (the new policy runs) or failure (the old one stays).",
      labelNames: ["result"],
      registers,
    });
    for (const result of ["success", "failure"]) this.reloads.inc({ result }, 0);
    new Gauge({
      name: "clawguard_shield_build_info",
      help: "Always 1; the running shield's version is in the label.",
      labelNames: ["version"],
      registers,
    }).set({ version: SHIELD_VERSION }, 1);
    if (logStats) registerLogMetrics(this.registry, logStats);
    // The default metrics already start with process_ or nodejs_.
    collectDefaultMetrics({ register: this.registry, prefix: "clawguard_shield_" });
    // prom-client names three gauges _total; each is the sum of a labelled gauge it also exports
    // (nodejs_active_handles by type, ...), so dropping them loses nothing.
    for (const kind of ["resources", "handles", "requests"])
      this.registry.removeSingleMetric(`clawguard_shield_nodejs_active_${kind}_total`);
  }

  record(r: LogRecord): void {
    this.decisions.inc({ decision: r.decision });
    if (r.bytesUp > 0) this.bytes.inc({ direction: "up" }, r.bytesUp);
    if (r.bytesDown > 0) this.bytes.inc({ direction: "down" }, r.bytesDown);
    const budget = budgetAction(r);
    if (budget) this.overruns.inc(budget);
  }

  reloaded(ok: boolean): void {
    this.reloads.inc({ result: ok ? "success" : "failure" });
  }

  dnsQuery(agent: string | null, answer: string): void {
    this.dns.inc({ agent: agent ?? "", answer });
  }

  observeLatency(seconds: number): void {
    this.latency.observe(seconds);
  }
}
