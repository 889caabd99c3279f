/**
 * Budgets held together by several shields, and kept across restarts. Each shield counts in its
 * own BudgetMeter as before, and at every merge (twice a second) adds what it counted since the
 * last one to the store's counts, by window slot, and reads every count back. What the others
 * counted is then the store's count less what this run added itself.
 *
 * The bound: another shield's counts reach this one at most one merge interval after they were
 * made there, plus one more before this one reads (2 x 500 ms = 1 s). Within that second each
 * of the other N - 1 shields may admit what its own view allows, so a budget can be passed by at
 * most (N - 1) x r x 1 s, where r is the rate one shield admits under it. While the store cannot
 * be reached, each shield holds each budget alone with what it last knew: at worst N times it.
 */
import type { SharedCounts } from "../admission/budget.js";

/** Slots per window, as the meter keeps them (budget.ts): slot = floor(epoch ms / (window / 60)). */
export const SLOTS = 60;
export const MERGE_INTERVAL_MS = 500;

export interface CountRow {
  key: string;
  windowMs: number;
  slot: number;
  requests: number;
  bytes: number;
}

/** Where the counts are kept: PostgreSQL for shields that share, SQLite for one alone. */
export interface BudgetCounts {
  /**
   * Add `deltas` (one row per key, window and slot), then answer every row of a slot that is
   * still in its window at `nowMs`.
   */
  merge(deltas: CountRow[], nowMs: number): Promise<CountRow[]>;
  close(): Promise<void>;
}

export function slotOf(nowMs: number, windowMs: number): number {
  return Math.floor((nowMs * SLOTS) / windowMs);
}

const id = (key: string, windowMs: number) => `${windowMs}\u0000${key}`;

type Slots = Map<number, { requests: number; bytes: number }>;

export interface ShareHealth {
  /** ms since the epoch of the last merge that reached the store; null before the first. */
  lastMerge: number | null;
  lastError: string | null;
  /** Rows counted here and not yet in the store. */
  pending: number;
}

export class BudgetShare implements SharedCounts {
  /** Counted here since the last merge. */
  private pending = new Map<string, CountRow>();
  /** What this run put into the store, by key and slot: not someone else's. */
  private readonly mine = new Map<string, Slots>();
  /** The store's counts as last read. */
  private store = new Map<string, Slots>();
  private timer: NodeJS.Timeout | null = null;
  private merging: Promise<void> | null = null;
  private lastMerge: number | null = null;
  private lastError: string | null = null;

  constructor(
    private readonly counts: BudgetCounts,
    private readonly clock: () => number = Date.now,
  ) {}

  remote(key: string, windowMs: number): { requests: number; bytes: number } {
    const k = id(key, windowMs);
    const stored = this.store.get(k);
    if (!stored) return { requests: 0, bytes: 0 };
    const from = slotOf(this.clock(), windowMs) - SLOTS;
    const mine = this.mine.get(k);
    let requests = 0;
    let bytes = 0;
    for (const [slot, c] of stored) {
      if (slot < from) continue;
      const m = mine?.get(slot);
      requests += c.requests - (m?.requests ?? 0);
      bytes += c.bytes - (m?.bytes ?? 0);
    }
    return { requests: Math.max(0, requests), bytes: Math.max(0, bytes) };
  }

  added(key: string, windowMs: number, requests: number, bytes: number): void {
    const slot = slotOf(this.clock(), windowMs);
    const k = `${id(key, windowMs)}\u0000${slot}`;
    const row = this.pending.get(k);
    if (row) {
      row.requests += requests;
      row.bytes += bytes;
    } else this.pending.set(k, { key, windowMs, slot, requests, bytes });
  }

  /** Read what the store holds (counts of earlier runs included), then merge on a timer. */
  async start(): Promise<void> {
    await this.merge();
    this.timer = setInterval(() => void this.merge(), MERGE_INTERVAL_MS);
    this.timer.unref();
  }

  /** One merge; a failed one keeps its counts for the next. Never throws. */
  merge(): Promise<void> {
    this.merging ??= this.mergeOnce().finally(() => (this.merging = null));
    return this.merging;
  }

  private async mergeOnce(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending = new Map();
    const now = this.clock();
    let rows: CountRow[];
    try {
      rows = await this.counts.merge(batch, now);
    } catch (e) {
      for (const r of batch) this.added(r.key, r.windowMs, r.requests, r.bytes);
      this.lastError = e instanceof Error ? e.message : String(e);
      return;
    }
    for (const r of batch) {
      const k = id(r.key, r.windowMs);
      let slots = this.mine.get(k);
      if (!slots) this.mine.set(k, (slots = new Map()));
      const c = slots.get(r.slot) ?? { requests: 0, bytes: 0 };
      slots.set(r.slot, { requests: c.requests + r.requests, bytes: c.bytes + r.bytes });
    }
    const store = new Map<string, Slots>();
    for (const r of rows) {
      const k = id(r.key, r.windowMs);
      let slots = store.get(k);
      if (!slots) store.set(k, (slots = new Map()));
      slots.set(r.slot, { requests: r.requests, bytes: r.bytes });
    }
    this.store = store;
    // Slots out of every window are nobody's any more.
    for (const [k, slots] of this.mine) {
      const windowMs = Number(k.slice(0, k.indexOf("\u0000")));
      const from = slotOf(now, windowMs) - SLOTS;
      for (const slot of slots.keys()) if (slot < from) slots.delete(slot);
      if (slots.size === 0) this.mine.delete(k);
    }
    this.lastMerge = now;
    this.lastError = null;
  }

  health(): ShareHealth {
    return { lastMerge: this.lastMerge, lastError: this.lastError, pending: this.pending.size };
  }

  /** Stop the timer and put what is pending into the store (if it answers). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.merging;
    await this.merge();
    await this.counts.close();
  }
}
