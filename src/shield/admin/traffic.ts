/**
 * The last hour of traffic, minute by minute, for the dashboard: per agent, requests and bytes
 * each way; and the destinations refused most often. Kept in memory from the records the proxy
 * writes (the log holds the rest): 60 buckets per agent, rotated as the minutes pass.
 */
import type { LogRecord } from "../types.js";

export const HISTORY_MINUTES = 60;
const MINUTE = 60_000;
/** Destinations counted per minute: a flood of distinct names must not grow memory without end. */
const MAX_REFUSED_PER_MINUTE = 500;

interface Minute {
  /** Minutes since the epoch. */
  at: number;
  agents: Map<string, { requests: number; bytesUp: number; bytesDown: number }>;
  /** Refusals per destination, counted per agent (so a view can keep only some agents'). */
  refused: Map<string, Map<string, number>>;
}

export interface AgentSeries {
  id: string;
  /** Oldest minute first; the last is the current one. */
  requests: number[];
  bytesUp: number[];
  bytesDown: number[];
}

export interface RefusedDestination {
  destination: string;
  count: number;
  agents: string[];
}

export interface TrafficView {
  minutes: number;
  /** The start of the oldest minute, ms since the epoch. */
  since: number;
  agents: AgentSeries[];
  refused: RefusedDestination[];
}

export class TrafficHistory {
  private readonly minutes: Minute[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  record(r: LogRecord): void {
    const m = this.current(Math.floor(this.now() / MINUTE));
    const id = r.agent ?? "(unknown)";
    let a = m.agents.get(id);
    if (!a) m.agents.set(id, (a = { requests: 0, bytesUp: 0, bytesDown: 0 }));
    a.requests += 1;
    a.bytesUp += r.bytesUp;
    a.bytesDown += r.bytesDown;
    if (r.decision !== "denied" || r.host === "") return;
    const destination = `${r.host.includes(":") ? `[${r.host}]` : r.host}:${r.port}`;
    let d = m.refused.get(destination);
    if (!d) {
      if (m.refused.size >= MAX_REFUSED_PER_MINUTE) return;
      m.refused.set(destination, (d = new Map()));
    }
    d.set(id, (d.get(id) ?? 0) + 1);
  }

  /**
   * Every agent seen in the last hour with its series, and the `top` destinations refused most;
   * with `sees`, only the agents it keeps count, in the series and in the refusals alike.
   */
  view(top = 10, sees: (agent: string) => boolean = () => true): TrafficView {
    const nowMinute = Math.floor(this.now() / MINUTE);
    const first = nowMinute - HISTORY_MINUTES + 1;
    const series = new Map<string, AgentSeries>();
    const refused = new Map<string, { count: number; agents: Set<string> }>();
    for (const m of this.minutes) {
      if (m.at < first || m.at > nowMinute) continue;
      const i = m.at - first;
      for (const [id, a] of m.agents) {
        if (!sees(id)) continue;
        let s = series.get(id);
        if (!s) {
          const zeros = () => new Array<number>(HISTORY_MINUTES).fill(0);
          series.set(id, (s = { id, requests: zeros(), bytesUp: zeros(), bytesDown: zeros() }));
        }
        s.requests[i]! += a.requests;
        s.bytesUp[i]! += a.bytesUp;
        s.bytesDown[i]! += a.bytesDown;
      }
      for (const [dest, d] of m.refused)
        for (const [id, n] of d) {
          if (!sees(id)) continue;
          let t = refused.get(dest);
          if (!t) refused.set(dest, (t = { count: 0, agents: new Set() }));
          t.count += n;
          t.agents.add(id);
        }
    }
    return {
      minutes: HISTORY_MINUTES,
      since: first * MINUTE,
      agents: [...series.values()].sort((a, b) => a.id.localeCompare(b.id)),
      refused: [...refused]
        .map(([destination, d]) => ({ destination, count: d.count, agents: [...d.agents].sort() }))
        .sort((a, b) => b.count - a.count || a.destination.localeCompare(b.destination))
        .slice(0, top),
    };
  }

  private current(at: number): Minute {
    const last = this.minutes[this.minutes.length - 1];
    if (last && last.at === at) return last;
    while (this.minutes.length > 0 && this.minutes[0]!.at <= at - HISTORY_MINUTES) this.minutes.shift();
    const m: Minute = { at, agents: new Map(), refused: new Map() };
    this.minutes.push(m);
    return m;
  }
}
