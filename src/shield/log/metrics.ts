import { Counter, Gauge, type Registry } from "prom-client";
import type { LogStats } from "./store.js";

/**
 * Expose the writer's counters on a Prometheus registry, read at scrape time. A growing
 * `dropped` or `queued` is the alarm that the audit log is losing or holding records.
 */
export function registerLogMetrics(registry: Registry, stats: () => LogStats): void {
  const gauge = (name: string, help: string, pick: (s: LogStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(stats()));
      },
    });
  // The writer keeps its own running totals: a counter set from them at scrape time.
  const counter = (name: string, help: string, pick: (s: LogStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(pick(stats()));
      },
    });
  counter(
    "clawguard_shield_log_appended_total",
    "Records handed to the audit log since start.",
    (s) => s.appended,
  );
  counter("clawguard_shield_log_committed_total", "Records durably written since start.", (s) => s.committed);
  gauge("clawguard_shield_log_queued", "Records waiting in memory to be written.", (s) => s.queued);
  counter(
    "clawguard_shield_log_dropped_total",
    "Records lost because the queue was full or the log closed.",
    (s) => s.dropped,
  );
  counter(
    "clawguard_shield_log_commit_failures_total",
    "Batches the database refused (full, locked, read-only).",
    (s) => s.commitFailures,
  );
  gauge("clawguard_shield_log_head_id", "Id of the newest record written.", (s) => s.headId);
  gauge(
    "clawguard_shield_log_writer_background",
    "1 while the log writer thread runs at nice 19 (it keeps up), 0 at the proxy's priority, -1 where its priority is left alone.",
    (s) => (s.writerInBackground === null ? -1 : s.writerInBackground ? 1 : 0),
  );
}
