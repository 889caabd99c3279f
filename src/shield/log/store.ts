import type Database from "better-sqlite3";
import type { LogRecord, LogSink } from "../types.js";
import { followRecords, queryRecords, type FollowOptions, type LogFilter } from "./query.js";
import { normaliseRecord, recordHash, reverseHost, type StoredRecord } from "./record.js";
import { pruneRecords, type PruneOptions, type PruneResult } from "./retention.js";
import { LogError, openReadOnly, openWritable, readChain, type Synchronous } from "./schema.js";
import { verifyChain, type VerifyResult } from "./verify.js";

export interface LogStoreOptions {
  /** Commit whatever is queued at least this often (ms). */
  intervalMs?: number;
  /** Commit as soon as this many records are queued; also the most one transaction writes. */
  batchSize?: number;
  /** Records held in memory while the database refuses writes; beyond this, new ones are dropped and counted. */
  maxQueue?: number;
  synchronous?: Synchronous;
  /** Hard cap on the database file; writes beyond it fail (and queue) until retention frees space. */
  hardLimitBytes?: number;
  /** Prune on a timer. */
  retention?: { olderThanMs?: number; maxBytes?: number; intervalMs?: number };
  /** Where loud warnings go (rate-limited); stderr by default. */
  onWarning?: (message: string) => void;
}

export interface LogStats {
  /** Records accepted by append since open. */
  appended: number;
  committed: number;
  queued: number;
  /** Records refused because the queue was full or the store closed: gaps the operator must know about. */
  dropped: number;
  commitFailures: number;
  lastError: string | null;
  headId: number;
}

/** Reading side of the log: what `shield log` and `verify-log` need. */
export interface LogReader {
  readonly path: string;
  query(filter: LogFilter): StoredRecord[];
  follow(
    filter: LogFilter,
    onRecords: (records: StoredRecord[]) => void,
    opts?: FollowOptions,
  ): Promise<void>;
  verify(): VerifyResult;
  close(): Promise<void>;
}

export interface LogStore extends LogSink, LogReader {
  prune(opts: PruneOptions): Promise<PruneResult>;
  stats(): LogStats;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const WARN_EVERY_MS = 10_000;

class SqliteLogStore implements LogStore {
  private readonly queue: LogRecord[] = [];
  /** Index of the first uncommitted record in `queue`; compacted now and then. */
  private start = 0;
  private appended = 0;
  private committed = 0;
  private dropped = 0;
  private commitFailures = 0;
  private lastError: string | null = null;
  private failStreak = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private retentionStart: NodeJS.Timeout | null = null;
  private pruning: Promise<PruneResult> | null = null;
  private closed = false;
  private readonly lastWarned = new Map<string, number>();
  private readonly insert: Database.Statement;
  private readonly head: Database.Statement;
  private readonly setHead: Database.Statement;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly maxQueue: number;
  private readonly warn: (message: string) => void;

  constructor(
    readonly path: string,
    private readonly db: Database.Database,
    opts: LogStoreOptions,
  ) {
    this.intervalMs = opts.intervalMs ?? 50;
    this.batchSize = opts.batchSize ?? 512;
    this.maxQueue = opts.maxQueue ?? 250_000;
    this.warn = opts.onWarning ?? ((m) => process.stderr.write(`clawguard shield log: ${m}\n`));
    this.insert = db.prepare(
      `INSERT INTO records (id, ts, agent, fleet, tier, source_address, method, host, host_rev, port, path,
         decision, rule, reason, upstream_address, bytes_up, bytes_down, duration_ms, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.head = db.prepare("SELECT head_id AS id, head_hash AS hash FROM chain WHERE one = 1");
    this.setHead = db.prepare("UPDATE chain SET head_id = ?, head_hash = ? WHERE one = 1");
    if (
      opts.retention &&
      (opts.retention.olderThanMs !== undefined || opts.retention.maxBytes !== undefined)
    ) {
      const { olderThanMs, maxBytes } = opts.retention;
      const run = () =>
        this.prune({ olderThanMs, maxBytes }).catch((err: unknown) =>
          this.loud("prune", `retention failed: ${err instanceof Error ? err.message : String(err)}`),
        );
      // First pass soon after start, so a log that outgrew its limits while the shield was down shrinks now.
      this.retentionStart = setTimeout(run, 1000);
      this.retentionStart.unref();
      this.retentionTimer = setInterval(run, opts.retention.intervalMs ?? 10 * 60_000);
      this.retentionTimer.unref();
    }
  }

  get queued(): number {
    return this.queue.length - this.start;
  }

  append(record: LogRecord): void {
    try {
      if (this.closed || this.queued >= this.maxQueue) {
        this.dropped += 1;
        this.loud(
          "drop",
          `dropped ${this.dropped} record(s) so far: ${this.closed ? "the log is closed" : `${this.queued} records are waiting for ${this.path} (${this.lastError ?? "writes are slower than traffic"})`}`,
        );
        return;
      }
      this.queue.push(normaliseRecord(record));
      this.appended += 1;
      this.schedule();
    } catch (err) {
      // The data path must never see the log fail; count it as a drop instead.
      this.dropped += 1;
      this.loud("drop", `dropped a record: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private schedule(): void {
    if (this.immediate) return;
    if (this.failStreak === 0 && this.queued >= this.batchSize) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.immediate = setImmediate(() => this.drainStep());
    } else if (!this.timer) {
      // After failures, back off (up to 2 s) instead of hammering a full or locked database.
      const delay =
        this.failStreak === 0
          ? this.intervalMs
          : Math.min(2000, this.intervalMs * 2 ** Math.min(this.failStreak, 6));
      this.timer = setTimeout(() => this.drainStep(), delay);
      this.timer.unref();
    }
  }

  /** Commit one batch, then come back on the next turn of the event loop if more is queued. */
  private drainStep(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = null;
    this.timer = null;
    if (this.queued === 0 || !this.db.open) return;
    this.commitBatch();
    if (this.queued > 0) this.schedule();
  }

  /** Write up to one batch in one transaction, chained from the stored head. False if the database refused. */
  private commitBatch(): boolean {
    const n = Math.min(this.batchSize, this.queued);
    try {
      this.db
        .transaction(() => {
          const head = this.head.get() as { id: number; hash: string } | undefined;
          if (!head) throw new LogError("the chain table has no row");
          let id = head.id;
          let prev = head.hash;
          for (let i = this.start; i < this.start + n; i++) {
            const r = this.queue[i]!;
            id += 1;
            const hash = recordHash(id, r, prev);
            this.insert.run(
              id,
              r.ts,
              r.agent,
              r.fleet,
              r.tier,
              r.sourceAddress,
              r.method,
              r.host,
              reverseHost(r.host),
              r.port,
              r.path,
              r.decision,
              r.rule,
              r.reason,
              r.upstreamAddress,
              r.bytesUp,
              r.bytesDown,
              r.durationMs,
              prev,
              hash,
            );
            prev = hash;
          }
          this.setHead.run(id, prev);
        })
        .immediate();
    } catch (err) {
      this.commitFailures += 1;
      this.failStreak += 1;
      this.lastError = err instanceof Error ? err.message : String(err);
      this.loud(
        "commit",
        `cannot write to ${this.path} (${this.lastError}); ${this.queued} record(s) kept in memory and retried`,
      );
      return false;
    }
    if (this.failStreak > 0)
      this.loud("recovered", `writing to ${this.path} again after ${this.failStreak} failure(s)`, true);
    this.failStreak = 0;
    this.start += n;
    this.committed += n;
    if (this.start > 4096 && this.start * 2 > this.queue.length) {
      this.queue.splice(0, this.start);
      this.start = 0;
    }
    return true;
  }

  private loud(kind: string, message: string, always = false): void {
    const now = Date.now();
    const last = this.lastWarned.get(kind) ?? -Infinity;
    if (!always && now - last < WARN_EVERY_MS) return;
    this.lastWarned.set(kind, now);
    this.warn(message);
  }

  async flush(): Promise<void> {
    const target = this.appended;
    while (this.committed < target) {
      if (!this.db.open)
        throw new LogError(`${target - this.committed} record(s) not written: ${this.path} is closed`);
      if (!this.commitBatch()) {
        this.schedule();
        throw new LogError(
          `cannot write ${this.queued} record(s) to ${this.path}: ${this.lastError}; they stay queued and are retried`,
        );
      }
      // Yield between batches so a large backlog does not stall the event loop.
      await tick();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    if (this.retentionStart) clearTimeout(this.retentionStart);
    if (this.pruning) await this.pruning.catch(() => undefined);
    let failure: unknown = null;
    try {
      await this.flush();
    } catch (err) {
      failure = err;
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    const lost = this.queued;
    this.db.close();
    if (failure) {
      throw new LogError(
        `closed ${this.path} with ${lost} record(s) unwritten: ${failure instanceof Error ? failure.message : String(failure)}`,
      );
    }
  }

  query(filter: LogFilter): StoredRecord[] {
    return queryRecords(this.db, filter);
  }

  follow(
    filter: LogFilter,
    onRecords: (records: StoredRecord[]) => void,
    opts?: FollowOptions,
  ): Promise<void> {
    return followRecords(this.db, filter, onRecords, opts);
  }

  verify(): VerifyResult {
    return verifyChain(this.db);
  }

  prune(opts: PruneOptions): Promise<PruneResult> {
    // One prune at a time; a second caller waits for the running one and then runs its own.
    const run = (this.pruning ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => pruneRecords(this.db, opts));
    this.pruning = run;
    return run.finally(() => {
      if (this.pruning === run) this.pruning = null;
    });
  }

  stats(): LogStats {
    return {
      appended: this.appended,
      committed: this.committed,
      queued: this.queued,
      dropped: this.dropped,
      commitFailures: this.commitFailures,
      lastError: this.lastError,
      headId: this.db.open ? readChain(this.db).headId : -1,
    };
  }
}

/**
 * Open the shield's audit log for writing. `append` only queues in memory; batches are committed
 * in one transaction every `intervalMs` or as soon as `batchSize` records wait, so the proxy never
 * waits on the disk. If the database refuses writes (disk full, locked, read-only), records stay
 * queued, are retried with backoff, and only the overflow beyond `maxQueue` is dropped, counted,
 * and reported on stderr.
 */
export function openLogStore(path: string, opts: LogStoreOptions = {}): LogStore {
  const db = openWritable(path, opts.synchronous ?? "normal");
  if (opts.hardLimitBytes !== undefined) {
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(opts.hardLimitBytes / pageSize))}`);
  }
  return new SqliteLogStore(path, db, opts);
}

class SqliteLogReader implements LogReader {
  constructor(
    readonly path: string,
    private readonly db: Database.Database,
  ) {}
  query(filter: LogFilter): StoredRecord[] {
    return queryRecords(this.db, filter);
  }
  follow(
    filter: LogFilter,
    onRecords: (records: StoredRecord[]) => void,
    opts?: FollowOptions,
  ): Promise<void> {
    return followRecords(this.db, filter, onRecords, opts);
  }
  verify(): VerifyResult {
    return verifyChain(this.db);
  }
  async close(): Promise<void> {
    this.db.close();
  }
}

/** Open an existing log read-only, safe to use while the shield is writing it. */
export function openLogReader(path: string): LogReader {
  return new SqliteLogReader(path, openReadOnly(path));
}
