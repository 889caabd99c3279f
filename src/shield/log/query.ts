import type Database from "better-sqlite3";
import { DECISIONS, reverseHost, type LogDecision, type StoredRecord } from "./record.js";
import { LogError } from "./schema.js";
import { changeMethods, operatorRule } from "./changes.js";

export interface LogFilter {
  agent?: string;
  /** Only records of agents in these fleets (an operator's scope); records of no fleet are left out. */
  fleets?: readonly string[];
  decision?: LogDecision;
  /** Only the changes this operator made (mode switches, rules, operators, access grants, enrolments). */
  operator?: string;
  /** Exact host, or `*.example.com` for every name under example.com (not example.com itself). */
  host?: string;
  /** Inclusive bounds on the record's time, in ms since the epoch. */
  since?: number;
  until?: number;
  /** Only records with a larger id (for paging and following). */
  afterId?: number;
  limit?: number;
  /** "asc" (default) oldest first; "desc" newest first, for "the last N". */
  order?: "asc" | "desc";
}

interface Row {
  id: number;
  ts: number;
  agent: string | null;
  fleet: string | null;
  tier: string | null;
  source_address: string;
  method: string;
  host: string;
  host_rev: string;
  port: number;
  path: string | null;
  decision: LogDecision;
  rule: string | null;
  reason: string;
  upstream_address: string | null;
  bytes_up: number;
  bytes_down: number;
  duration_ms: number;
  prev_hash: string;
  hash: string;
}

export function fromRow(r: Row): StoredRecord {
  return {
    id: r.id,
    ts: r.ts,
    agent: r.agent,
    fleet: r.fleet,
    tier: r.tier,
    sourceAddress: r.source_address,
    method: r.method,
    host: r.host,
    port: r.port,
    path: r.path,
    decision: r.decision,
    rule: r.rule,
    reason: r.reason,
    upstreamAddress: r.upstream_address,
    bytesUp: r.bytes_up,
    bytesDown: r.bytes_down,
    durationMs: r.duration_ms,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export type RawRow = Row;

const MAX_LIMIT = 100_000;

/** Records matching every given condition, by id (the order they were written). */
export function queryRecords(db: Database.Database, f: LogFilter): StoredRecord[] {
  const where: string[] = [];
  const args: Array<string | number> = [];
  if (f.agent !== undefined) {
    where.push("agent = ?");
    args.push(f.agent);
  }
  if (f.fleets !== undefined) {
    where.push(f.fleets.length === 0 ? "0" : `fleet IN (${f.fleets.map(() => "?").join(", ")})`);
    args.push(...f.fleets);
  }
  if (f.operator !== undefined) {
    const methods = changeMethods();
    where.push(`rule = ? AND method IN (${methods.map(() => "?").join(", ")})`);
    args.push(operatorRule(f.operator), ...methods);
  }
  if (f.decision !== undefined) {
    if (!DECISIONS.includes(f.decision)) {
      throw new LogError(`decision must be one of ${DECISIONS.join(", ")}, not "${String(f.decision)}"`);
    }
    where.push("decision = ?");
    args.push(f.decision);
  }
  if (f.host !== undefined) {
    const host = f.host.toLowerCase().replace(/\.$/, "");
    if (host.startsWith("*.")) {
      // Reversed, "*.example.com" becomes the prefix "moc.elpmaxe." and "/" is the next code point after ".".
      const prefix = reverseHost(host.slice(1));
      where.push("host_rev >= ? AND host_rev < ?");
      args.push(prefix, prefix.slice(0, -1) + "/");
    } else {
      where.push("host = ?");
      args.push(host);
    }
  }
  if (f.since !== undefined) {
    where.push("ts >= ?");
    args.push(f.since);
  }
  if (f.until !== undefined) {
    where.push("ts <= ?");
    args.push(f.until);
  }
  if (f.afterId !== undefined) {
    where.push("id > ?");
    args.push(f.afterId);
  }
  const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(f.limit ?? 1000)));
  const order = f.order === "desc" ? "DESC" : "ASC";
  const sql =
    "SELECT * FROM records" +
    (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
    ` ORDER BY id ${order} LIMIT ${limit}`;
  return (db.prepare(sql).all(...args) as Row[]).map(fromRow);
}

export interface FollowOptions {
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Poll for records written after `filter.afterId` (or after the newest one when absent) and hand
 * each new batch to `onRecords`, until `signal` aborts.
 */
export async function followRecords(
  db: Database.Database,
  filter: LogFilter,
  onRecords: (records: StoredRecord[]) => void,
  opts: FollowOptions = {},
): Promise<void> {
  const interval = opts.intervalMs ?? 500;
  let after =
    filter.afterId ??
    (db.prepare("SELECT MAX(id) AS id FROM records").get() as { id: number | null }).id ??
    0;
  while (!opts.signal?.aborted) {
    for (;;) {
      const batch = queryRecords(db, { ...filter, afterId: after, order: "asc", limit: 1000 });
      if (batch.length === 0) break;
      after = batch[batch.length - 1]!.id;
      onRecords(batch);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, interval);
      function done() {
        clearTimeout(t);
        opts.signal?.removeEventListener("abort", done);
        resolve();
      }
      opts.signal?.addEventListener("abort", done, { once: true });
    });
  }
}
