/**
 * The audit log's SQLite store: records queued by the proxy without waiting, committed in
 * batches by a writer thread that extends the hash chain, and read back, followed, verified and
 * pruned. One file a little past the usual length: the store and its reader are two faces of
 * one database and share its opening and its chain.
 */
import type Database from "better-sqlite3";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { LogRecord, LogSink } from "../types.js";
import { encodeBatch } from "./batch.js";
import { followRecords, queryRecords, type FollowOptions, type LogFilter } from "./query.js";
import { WriterPriority } from "./priority.js";
import { normaliseRecord, type StoredRecord } from "./record.js";
import type { PruneOptions, PruneResult } from "./retention.js";
import { LogError, openReadOnly, openWritable, readChain, type Synchronous } from "./schema.js";
import { verifyChain, type Anchor, type VerifyResult } from "./verify.js";
import type { FromWriter, ToWriter, WriterConfig } from "./writer.js";

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
  /** The writer thread runs at nice 19 now (it keeps up); null where its priority is left alone. */
  writerInBackground: boolean | null;
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
  verify(anchors?: Anchor[]): VerifyResult;
  close(): Promise<void>;
}

export interface LogStore extends LogSink, LogReader {
  prune(opts: PruneOptions): Promise<PruneResult>;
  stats(): LogStats;
}

const WARN_EVERY_MS = 10_000;

/**
 * The writer thread's entry. Built, it is writer.js next to this file; run from the TypeScript
 * sources (tests, `tsx`), the thread first registers tsx's loader so writer.ts can be imported.
 */
function startWriter(): Worker {
  const here = import.meta.url;
  // The writer needs no flags, and some of the parent's (--input-type, -e) are not valid for it.
  if (!here.endsWith(".ts")) return new Worker(new URL("./writer.js", here), { execArgv: [] });
  // The ESM build of tsx's API: its CommonJS twin cannot register hooks from a worker.
  const tsx = createRequire(here).resolve("tsx/package.json");
  const loader = pathToFileURL(path.join(path.dirname(tsx), "dist/esm/api/index.mjs")).href;
  const entry = new URL("./writer.ts", here).href;
  const code = `import(${JSON.stringify(loader)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, execArgv: [] });
}

/** The process's writer thread and the stores it serves; started on first use, again after a crash. */
interface SharedWriter {
  worker: Worker;
  stores: Map<number, SqliteLogStore>;
  /** Requests in flight: while any waits, the thread keeps the process alive. */
  waiting: number;
  /** The thread's CPU priority, once it said who it is (Linux only). */
  priority: WriterPriority | null;
}

/**
 * The writer thread runs in the background while at most this many records wait in all its
 * stores, and at the proxy's priority again above WRITER_BEHIND: a proxy busy enough to starve a
 * background thread then gets no more than a fraction of a second ahead of its log.
 */
const WRITER_KEEPS_UP = 512;
const WRITER_BEHIND = 4096;

/** Give the writer thread the priority its backlog calls for. */
function paceWriter(w: SharedWriter): void {
  if (!w.priority) return;
  let backlog = 0;
  for (const store of w.stores.values()) backlog += store.queued;
  w.priority.update(backlog);
}

let shared: SharedWriter | null = null;
let nextStoreId = 1;

function sharedWriter(): SharedWriter {
  if (shared) return shared;
  const w: SharedWriter = { worker: startWriter(), stores: new Map(), waiting: 0, priority: null };
  w.worker.unref();
  let failure: string | null = null;
  w.worker.on("message", (m: FromWriter) => {
    if (m.t !== "thread") {
      w.stores.get(m.s)?.onWriterMessage(m);
      if (m.t === "committed") paceWriter(w);
      return;
    }
    try {
      w.priority = new WriterPriority(m.tid, WRITER_KEEPS_UP, WRITER_BEHIND);
    } catch {
      w.priority = null; // its priority cannot be read: leave it as it is
    }
    paceWriter(w);
  });
  w.worker.on("error", (err) => (failure = err.message));
  w.worker.on("exit", () => {
    // Its id may go to another thread now: never touch it again.
    w.priority = null;
    if (shared === w) shared = null;
    for (const store of w.stores.values()) store.writerDied(failure ?? "the log writer thread stopped");
  });
  shared = w;
  return w;
}

class SqliteLogStore implements LogStore {
  /** Normalised records not yet posted to the writer. */
  private pending: LogRecord[] = [];
  private appended = 0;
  private committed = 0;
  private dropped = 0;
  /** Records the writer held when it died: counted as dropped, no longer as queued. */
  private lost = 0;
  private commitFailures = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private retentionStart: NodeJS.Timeout | null = null;
  private pruning: Promise<PruneResult> | null = null;
  private closed = false;
  private readonly lastWarned = new Map<string, number>();
  private readonly intervalMs: number;
  private readonly batchSize: number;
  private readonly maxQueue: number;
  private readonly warn: (message: string) => void;
  private readonly writerConfig: WriterConfig;
  private readonly id = nextStoreId++;
  private writer!: SharedWriter;
  private committedBefore = 0;
  private failuresBefore = 0;
  private nextRequest = 1;
  private readonly requests = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();

  constructor(
    readonly path: string,
    /** Read-only: queries, follow, verify and stats read here while the writer thread writes. */
    private readonly db: Database.Database,
    opts: LogStoreOptions,
  ) {
    this.intervalMs = opts.intervalMs ?? 50;
    this.batchSize = opts.batchSize ?? 512;
    this.maxQueue = opts.maxQueue ?? 250_000;
    this.warn = opts.onWarning ?? ((m) => process.stderr.write(`clawguard shield log: ${m}\n`));
    this.writerConfig = {
      path,
      synchronous: opts.synchronous ?? "normal",
      hardLimitBytes: opts.hardLimitBytes,
      intervalMs: this.intervalMs,
      batchSize: this.batchSize,
    };
    this.attach();
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

  /** Register with the process's writer thread (a new one after a crash). */
  private attach(): void {
    // A new writer counts from zero; these carry the totals of the ones before it.
    this.committedBefore = this.committed;
    this.failuresBefore = this.commitFailures;
    this.writer = sharedWriter();
    this.writer.stores.set(this.id, this);
    this.writer.worker.postMessage({ t: "open", s: this.id, cfg: this.writerConfig } satisfies ToWriter);
  }

  /** The writer thread died: fail what waited on it, count what it held, and go on with a new one. */
  writerDied(reason: string): void {
    this.lastError = `log writer failed: ${reason}`;
    for (const r of this.requests.values()) r.reject(new LogError(`${this.path}: ${this.lastError}`));
    this.requests.clear();
    if (this.closed) return;
    const held = this.queued - this.pending.length;
    this.lost += held;
    this.dropped += held;
    this.loud(
      "writer",
      `the log writer for ${this.path} stopped (${reason}); ${held} record(s) lost; restarting it`,
      true,
    );
    this.attach();
  }

  onWriterMessage(m: Exclude<FromWriter, { t: "thread" }>): void {
    switch (m.t) {
      case "committed":
        this.committed = m.committed + this.committedBefore;
        return;
      case "failed":
        this.commitFailures = m.commitFailures + this.failuresBefore;
        this.lastError = m.lastError;
        this.loud(
          "commit",
          `cannot write to ${this.path} (${m.lastError}); ${this.queued} record(s) kept in memory and retried`,
        );
        return;
      case "warn":
        this.loud(m.kind, m.message, m.always);
        return;
      case "done": {
        const r = this.requests.get(m.id);
        if (!r) return;
        this.requests.delete(m.id);
        if (--this.writer.waiting === 0) this.writer.worker.unref();
        if (m.ok) r.resolve(m.value);
        else r.reject(new LogError(m.error));
      }
    }
  }

  /** Ask the writer for something after every record appended so far was posted to it. */
  private request<T>(msg: DistributiveOmit<ToWriter, "id" | "s">): Promise<T> {
    this.post();
    const id = this.nextRequest++;
    return new Promise<T>((resolve, reject) => {
      this.requests.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.writer.waiting++ === 0) this.writer.worker.ref();
      this.writer.worker.postMessage({ ...msg, s: this.id, id } as ToWriter);
    });
  }

  get queued(): number {
    return this.appended - this.committed - this.lost;
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
      this.pending.push(normaliseRecord(record));
      this.appended += 1;
      this.schedule();
    } catch (err) {
      // The data path must never see the log fail; count it as a drop instead.
      this.dropped += 1;
      this.loud("drop", `dropped a record: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * Hand records to the writer once a batch is full (on the next turn, so a burst of appends
   * costs the data path nothing) or after `intervalMs`: one message per batch, not per record.
   */
  private schedule(): void {
    if (this.immediate) return;
    if (this.pending.length >= this.batchSize) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.immediate = setImmediate(() => this.postStep());
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.postStep(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Post one batch, then come back on the next turn if more wait: a backlog never stalls the loop. */
  private postStep(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = null;
    this.timer = null;
    this.postBatch(this.batchSize);
    if (this.pending.length > 0) this.schedule();
  }

  private postBatch(max: number): void {
    if (this.pending.length === 0) return;
    const records = this.pending.length <= max ? this.pending : this.pending.slice(0, max);
    this.pending = this.pending.length <= max ? [] : this.pending.slice(max);
    const utf8 = encodeBatch(records);
    this.writer.worker.postMessage({ t: "records", s: this.id, utf8 } satisfies ToWriter, [utf8.buffer]);
    paceWriter(this.writer);
  }

  /** Post everything appended so far, in batches, before a request that must come after it. */
  private post(): void {
    while (this.pending.length > 0) this.postBatch(this.batchSize);
  }

  private loud(kind: string, message: string, always = false): void {
    const now = Date.now();
    const last = this.lastWarned.get(kind) ?? -Infinity;
    if (!always && now - last < WARN_EVERY_MS) return;
    this.lastWarned.set(kind, now);
    this.warn(message);
  }

  /** Resolves once the writer has committed every record appended before the call. */
  async flush(): Promise<void> {
    if (this.queued === 0) return;
    if (this.closed && !this.closing)
      throw new LogError(`${this.queued} record(s) not written: ${this.path} is closed`);
    await this.request({ t: "flush" });
  }

  private closing = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
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
    await this.request({ t: "close" }).catch(() => undefined);
    this.writer.stores.delete(this.id);
    this.closing = false;
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

  verify(anchors: Anchor[] = []): VerifyResult {
    return verifyChain(this.db, anchors);
  }

  prune(opts: PruneOptions): Promise<PruneResult> {
    // One prune at a time; a second caller waits for the running one and then runs its own.
    const run = (this.pruning ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.request<PruneResult>({ t: "prune", opts }));
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
      writerInBackground: this.writer.priority?.managed ? this.writer.priority.inBackground : null,
    };
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Open the shield's audit log for writing. `append` only queues in memory; a writer thread
 * commits batches in one transaction every `intervalMs` or as soon as `batchSize` records wait,
 * so the proxy never waits on the disk or on hashing. If the database refuses writes (disk
 * full, locked, read-only), records stay queued, are retried with backoff, and only the
 * overflow beyond `maxQueue` is dropped, counted, and reported on stderr.
 */
export function openLogStore(path: string, opts: LogStoreOptions = {}): LogStore {
  // Create and migrate here, so a path that cannot be a log fails now, with its reason.
  openWritable(path, opts.synchronous ?? "normal").close();
  return new SqliteLogStore(path, openReadOnly(path), opts);
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
  verify(anchors: Anchor[] = []): VerifyResult {
    return verifyChain(this.db, anchors);
  }
  async close(): Promise<void> {
    this.db.close();
  }
}

/** Open an existing log read-only, safe to use while the shield is writing it. */
export function openLogReader(path: string): LogReader {
  return new SqliteLogReader(path, openReadOnly(path));
}
