/**
 * Budget counts in PostgreSQL, shared by every node: each merge adds a node's counts to the
 * slots' rows and reads all the rows still in a window. Rows are added to in one statement, in
 * key order, so that two nodes merging at once wait for each other instead of deadlocking.
 */
import type pg from "pg";
import { SLOTS, type BudgetCounts, type CountRow } from "./budget-share.js";

/** Rows older than every window they belong to are removed about once a minute. */
const PRUNE_EVERY_MS = 60_000;

export class PgBudgetCounts implements BudgetCounts {
  private lastPrune = 0;

  constructor(private readonly pool: pg.Pool) {}

  async merge(deltas: CountRow[], nowMs: number): Promise<CountRow[]> {
    if (deltas.length > 0) {
      const rows = [...deltas].sort((a, b) =>
        a.key < b.key ? -1 : a.key > b.key ? 1 : a.windowMs - b.windowMs || a.slot - b.slot,
      );
      await this.pool.query(
        `INSERT INTO clawguard.budget_counts (key, window_ms, slot, requests, bytes)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::float8[], $5::float8[])
         ON CONFLICT (key, window_ms, slot) DO UPDATE
           SET requests = budget_counts.requests + EXCLUDED.requests, bytes = budget_counts.bytes + EXCLUDED.bytes`,
        [
          rows.map((r) => r.key),
          rows.map((r) => r.windowMs),
          rows.map((r) => r.slot),
          rows.map((r) => r.requests),
          rows.map((r) => r.bytes),
        ],
      );
    }
    if (nowMs - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = nowMs;
      await this.pool.query(
        "DELETE FROM clawguard.budget_counts WHERE slot < floor($1::float8 * $2 / window_ms) - $2 - 1",
        [nowMs, SLOTS],
      );
    }
    const r = await this.pool.query(
      "SELECT key, window_ms, slot, requests, bytes FROM clawguard.budget_counts WHERE slot >= floor($1::float8 * $2 / window_ms) - $2",
      [nowMs, SLOTS],
    );
    return r.rows.map((x) => ({
      key: x.key,
      windowMs: Number(x.window_ms),
      slot: Number(x.slot),
      requests: Number(x.requests),
      bytes: Number(x.bytes),
    }));
  }

  async close(): Promise<void> {
    // The pool belongs to the store.
  }
}
