/**
 * The shared store's health on the shield's Prometheus registry, read at scrape time: whether
 * PostgreSQL answers (0 means the node enforces the last policy it had), the revision in force,
 * and the records waiting in the node's own log for PostgreSQL.
 */
import { Gauge, type Registry } from "prom-client";
import type { StoreHealth } from "./index.js";

export function registerStoreMetrics(registry: Registry, health: () => StoreHealth): void {
  const gauge = (name: string, help: string, pick: (h: StoreHealth) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(health()));
      },
    });
  gauge(
    "clawguard_shield_store_up",
    "1 while the shared store answers; 0 while this node enforces the last policy it had.",
    (h) => (h.reachable ? 1 : 0),
  );
  gauge(
    "clawguard_shield_store_revision",
    "Revision of the shared policy in force on this node.",
    (h) => h.revision,
  );
  gauge(
    "clawguard_shield_store_log_backlog",
    "Records committed to this node's own log and not yet in the shared store.",
    (h) => h.log?.backlog ?? 0,
  );
  gauge(
    "clawguard_shield_store_seconds_since_sync",
    "Seconds since the shared store last answered this node (-1: never).",
    (h) => (h.lastSync === null ? -1 : (Date.now() - h.lastSync) / 1000),
  );
}
