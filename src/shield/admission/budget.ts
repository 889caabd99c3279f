/**
 * Per-agent budgets: how many bytes an agent sent and how many requests it opened in each
 * sliding window its budgets name. A rule list says where an agent may go; a budget bounds how
 * much a hijacked agent can push out to the places it may go, and how fast it can spend an API
 * key. Counts live in memory; a `SharedCounts` (store/budget-share.ts) adds what other shields
 * and earlier runs counted, and is told of every count made here, so that they outlive a restart
 * and several shields hold one budget together.
 */
import type { BudgetLimit } from "../types.js";

/**
 * Slots per window. The count covers the current slot and the SLOTS before it whole, which is
 * at least one window: a budget can refuse up to a slot early, never let more through.
 */
const SLOTS = 60;

/** A sum over the last window, kept in SLOTS + 1 slots of window / SLOTS each. */
class SlidingSum {
  private readonly slots = new Float64Array(SLOTS + 1);
  private readonly slotMs: number;
  private slot = 0;
  private slotStart = 0;
  private sum = 0;

  constructor(windowMs: number) {
    this.slotMs = windowMs / SLOTS;
  }

  total(now: number): number {
    this.advance(now);
    return this.sum;
  }

  add(n: number, now: number): void {
    this.advance(now);
    this.slots[this.slot] = this.slots[this.slot]! + n;
    this.sum += n;
  }

  private advance(now: number): void {
    // A clock that stepped back stays in the current slot.
    if (now < this.slotStart + this.slotMs) return;
    const steps = Math.floor((now - this.slotStart) / this.slotMs);
    if (steps > SLOTS) {
      this.slots.fill(0);
      this.sum = 0;
    } else {
      for (let i = 0; i < steps; i++) {
        this.slot = this.slot === SLOTS ? 0 : this.slot + 1;
        this.sum -= this.slots[this.slot]!;
        this.slots[this.slot] = 0;
      }
      // Whole numbers in, whole numbers out: no drift below zero.
      if (this.sum < 0.5) this.sum = 0;
    }
    this.slotStart += steps * this.slotMs;
  }
}

/** One agent's counts for one window length (budgets of several levels may share it). */
interface Window {
  bytes: SlidingSum;
  requests: SlidingSum;
}

/** The budget a request or a byte would overrun. */
export interface Overrun {
  limit: BudgetLimit;
  kind: "upload" | "requests";
}

/** How much of one budget an agent has used in the current window. */
export interface BudgetUsage {
  scope: string;
  /** One count for every agent under the level, not one each. */
  shared: boolean;
  windowMs: number;
  text: string;
  upload: { used: number; limit: number } | null;
  requests: { used: number; limit: number } | null;
}

/** The one budget of an agent nearest to running out: which, what of it, and how far. */
export interface BudgetUse {
  scope: string;
  kind: "upload" | "requests";
  used: number;
  limit: number;
  /** used / limit, at most 1: 1 means spent. */
  fraction: number;
}

/** Of an agent's budgets, the one nearest to running out; null without budgets. */
export function nearestToSpent(budgets: readonly BudgetUsage[]): BudgetUse | null {
  let top: BudgetUse | null = null;
  for (const b of budgets) {
    for (const kind of ["upload", "requests"] as const) {
      const u = b[kind];
      if (u === null) continue;
      const fraction = Math.min(1, u.used / u.limit);
      if (top === null || fraction > top.fraction)
        top = { scope: b.scope, kind, used: u.used, limit: u.limit, fraction };
    }
  }
  return top;
}

/**
 * Counts made elsewhere, by key (an agent id, or a shared budget's scope) and window length: what
 * other shields counted, and this one before a restart.
 */
export interface SharedCounts {
  /** What others counted in the window of `windowMs` that ends now. */
  remote(key: string, windowMs: number): { requests: number; bytes: number };
  /** Counted here: to be passed on to the others. */
  added(key: string, windowMs: number, requests: number, bytes: number): void;
}

const NOTHING = { requests: 0, bytes: 0 };

export class BudgetMeter {
  /** Counts by agent id, and by level for shared budgets ("fleet:acme": no agent id has a colon). */
  private readonly counts = new Map<string, Map<number, Window>>();
  private shared: SharedCounts | null = null;

  /** Monotonic by default: a wall clock stepped back would hold every window still. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Hold every budget together with `counts` from now on. */
  share(counts: SharedCounts): void {
    this.shared = counts;
  }

  private remote(agent: string, limit: BudgetLimit): { requests: number; bytes: number } {
    return this.shared ? this.shared.remote(keyOf(agent, limit), limit.windowMs) : NOTHING;
  }

  /**
   * A new request or tunnel whose head sends `headBytes` upstream. With `enforce`, it is counted
   * only when every budget has room for it, and the first budget it would overrun is returned;
   * without (audit mode), it is counted whatever the budgets say, and the overrun still returned.
   */
  admit(agent: string, limits: readonly BudgetLimit[], headBytes: number, enforce: boolean): Overrun | null {
    if (limits.length === 0) return null;
    const now = this.now();
    const over = this.overrun(agent, limits, headBytes, now);
    if (over && enforce) return over;
    this.count(agent, limits, 1, headBytes, now);
    return over;
  }

  /** What `admit` would answer for such a request, counting nothing: a check asks this way. */
  peek(agent: string, limits: readonly BudgetLimit[], headBytes: number): Overrun | null {
    return limits.length === 0 ? null : this.overrun(agent, limits, headBytes, this.now());
  }

  /** The first budget one more request with a head of `headBytes` would overrun, or null. */
  private overrun(
    agent: string,
    limits: readonly BudgetLimit[],
    headBytes: number,
    now: number,
  ): Overrun | null {
    for (const limit of limits) {
      const w = this.windowFor(agent, limit);
      const others = this.remote(agent, limit);
      if (limit.requests !== undefined && w.requests.total(now) + others.requests + 1 > limit.requests)
        return { limit, kind: "requests" };
      // A spent budget (nothing left) refuses even a head of no bytes: a CONNECT's.
      const sent = limit.uploadBytes !== undefined ? w.bytes.total(now) + others.bytes : 0;
      if (
        limit.uploadBytes !== undefined &&
        (sent >= limit.uploadBytes || sent + headBytes > limit.uploadBytes)
      )
        return { limit, kind: "upload" };
    }
    return null;
  }

  /**
   * `n` more bytes the agent is about to send up an open request or tunnel: counted and null
   * when every upload budget has room; otherwise the overrun, counted only without `enforce`.
   * Enforced, an overrun spends the rest of that budget: the transfer is cut, and nothing more
   * is sent under it until its window moves on, instead of retrying piece by piece.
   */
  spend(agent: string, limits: readonly BudgetLimit[], n: number, enforce: boolean): Overrun | null {
    if (limits.length === 0) return null;
    const now = this.now();
    let over: Overrun | null = null;
    for (const limit of limits) {
      if (limit.uploadBytes === undefined) continue;
      const bytes = this.windowFor(agent, limit).bytes;
      const sent = bytes.total(now) + this.remote(agent, limit).bytes;
      if (sent + n > limit.uploadBytes) {
        over = { limit, kind: "upload" };
        if (enforce && sent < limit.uploadBytes) {
          bytes.add(limit.uploadBytes - sent, now);
          this.shared?.added(keyOf(agent, limit), limit.windowMs, 0, limit.uploadBytes - sent);
        }
        break;
      }
    }
    if (over && enforce) return over;
    this.count(agent, limits, 0, n, now);
    return over;
  }

  /** The use of each of the agent's budgets now: its own count, or the level's for a shared one. */
  usage(agent: string, limits: readonly BudgetLimit[]): BudgetUsage[] {
    const now = this.now();
    return limits.map((limit) => {
      const w = this.counts.get(keyOf(agent, limit))?.get(limit.windowMs);
      const others = this.remote(agent, limit);
      return {
        scope: limit.scope,
        shared: limit.shared === true,
        windowMs: limit.windowMs,
        text: limit.text,
        upload:
          limit.uploadBytes !== undefined
            ? { used: (w ? w.bytes.total(now) : 0) + others.bytes, limit: limit.uploadBytes }
            : null,
        requests:
          limit.requests !== undefined
            ? { used: (w ? w.requests.total(now) : 0) + others.requests, limit: limit.requests }
            : null,
      };
    });
  }

  /**
   * Requests and bytes added once to each of the agent's own windows (one per window length its
   * budgets use, and any an earlier config used) and once to the window of each shared budget.
   */
  private count(
    agent: string,
    limits: readonly BudgetLimit[],
    requests: number,
    bytes: number,
    now: number,
  ): void {
    const add = (key: string, windowMs: number, w: Window) => {
      if (requests > 0) w.requests.add(requests, now);
      if (bytes > 0) w.bytes.add(bytes, now);
      this.shared?.added(key, windowMs, requests, bytes);
    };
    // Each own window exists before counting, though the check before stopped at an overrun.
    for (const limit of limits) if (!limit.shared) this.windowFor(agent, limit);
    const own = this.counts.get(agent);
    if (own) for (const [windowMs, w] of own) add(agent, windowMs, w);
    for (const limit of limits)
      if (limit.shared) add(limit.scope, limit.windowMs, this.windowFor(agent, limit));
  }

  /** The count a budget is held against; a window that a reload added starts empty. */
  private windowFor(agent: string, limit: BudgetLimit): Window {
    const key = keyOf(agent, limit);
    let m = this.counts.get(key);
    if (!m) {
      m = new Map();
      this.counts.set(key, m);
    }
    let w = m.get(limit.windowMs);
    if (!w) {
      w = { bytes: new SlidingSum(limit.windowMs), requests: new SlidingSum(limit.windowMs) };
      m.set(limit.windowMs, w);
    }
    return w;
  }
}

function keyOf(agent: string, limit: BudgetLimit): string {
  return limit.shared ? limit.scope : agent;
}

const RULE_SUFFIX = " budget";
/** How the reason of a transfer cut at its budget starts. */
export const CUT_PREFIX = "cut: ";

/** Why a request was refused or a transfer cut, for the log: "tier:crew budget". */
export function overrunRule(o: Overrun): string {
  return `${o.limit.scope}${RULE_SUFFIX}`;
}

/**
 * For a log record a budget decided: the budget's level and what was done (rule texts carry no
 * spaces, so only a budget's rule ends in " budget"). Null for every other record.
 */
export function budgetAction(r: {
  rule: string | null;
  decision: string;
  reason: string;
}): { scope: string; action: "refused" | "cut" | "audited" } | null {
  if (r.rule === null || !r.rule.endsWith(RULE_SUFFIX)) return null;
  const scope = r.rule.slice(0, -RULE_SUFFIX.length);
  if (r.decision === "audited") return { scope, action: "audited" };
  return { scope, action: r.reason.startsWith(CUT_PREFIX) ? "cut" : "refused" };
}

/** "upload budget spent (upload 50MB per 1h, tier:crew)". */
export function overrunReason(o: Overrun): string {
  return `${o.kind === "upload" ? "upload" : "request"} budget spent (${o.limit.text}, ${o.limit.scope})`;
}
