/**
 * The audit logs' writer thread, one per process. It owns the only writable connection to each
 * open log: batches posted by the proxy's thread are hashed into the chain and committed here, so
 * neither SHA-256 nor SQLite ever holds the proxy's event loop. Retention runs here too, on the
 * same connection, so a prune and a commit never contend for the write lock.
 */
import type Database from "better-sqlite3";
import { parentPort, type MessagePort } from "node:worker_threads";
import { chainAppender, decodeBatch } from "./batch.js";
import { threadId } from "./priority.js";
import { pruneRecords, type PruneOptions, type PruneResult } from "./retention.js";
import { LogError, openWritable, type Synchronous } from "./schema.js";

export interface WriterConfig {
  path: string;
  synchronous: Synchronous;
  hardLimitBytes?: number;
  intervalMs: number;
  batchSize: number;
}

/** What the proxy's thread sends, per store `s`. Records arrive already normalised, in append order. */
export type ToWriter =
  | { t: "open"; s: number; cfg: WriterConfig }
  /** `utf8` is a batch as `encodeBatch` made it. */
  | { t: "records"; s: number; utf8: Uint8Array }
  | { t: "flush"; s: number; id: number }
  | { t: "prune"; s: number; id: number; opts: PruneOptions }
  | { t: "close"; s: number; id: number };

/**
 * What the writer sends back about store `s`. `committed` and `commitFailures` are running totals.
 * `thread` comes once, first: the writer thread's kernel id, for its CPU priority (priority.ts).
 */
export type FromWriter =
  | { t: "thread"; tid: number }
  | { t: "committed"; s: number; committed: number }
  | { t: "failed"; s: number; commitFailures: number; lastError: string }
  | { t: "warn"; s: number; kind: string; message: string; always: boolean }
  | { t: "done"; s: number; id: number; ok: true; value?: unknown }
  | { t: "done"; s: number; id: number; ok: false; error: string };

if (!parentPort) throw new Error("the shield log writer runs only as a worker thread");
const port: MessagePort = parentPort;
const send = (m: FromWriter) => port.postMessage(m);
const tid = threadId();
if (tid !== null) send({ t: "thread", tid });

/** One open log: its queue, its connection, its retry state. */
class StoreWriter {
  /** Records as `recordLine` wrote them. */
  private readonly queue: string[] = [];
  /** Index of the first uncommitted record in `queue`; compacted now and then. */
  private start = 0;
  private committed = 0;
  private commitFailures = 0;
  private failStreak = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private db: Database.Database | null = null;
  private append: ((lines: string[], start: number, n: number) => void) | null = null;

  constructor(
    private readonly s: number,
    private readonly cfg: WriterConfig,
  ) {}

  private get queued(): number {
    return this.queue.length - this.start;
  }

  /** The writable connection, opened on first use and again after a failed open. */
  connection(): Database.Database {
    if (this.db?.open) return this.db;
    const { cfg } = this;
    const opened = openWritable(cfg.path, cfg.synchronous);
    if (cfg.hardLimitBytes !== undefined) {
      const pageSize = opened.pragma("page_size", { simple: true }) as number;
      opened.pragma(`max_page_count = ${Math.max(1, Math.floor(cfg.hardLimitBytes / pageSize))}`);
    }
    this.append = chainAppender(opened);
    this.db = opened;
    return opened;
  }

  add(lines: string[]): void {
    for (const line of lines) this.queue.push(line);
    this.schedule();
  }

  private schedule(): void {
    if (this.immediate || this.queued === 0) return;
    if (this.failStreak === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      // The proxy's thread already waited up to intervalMs to fill the batch: write it now.
      this.immediate = setImmediate(() => this.drainStep());
    } else if (!this.timer) {
      // After failures, back off (up to 2 s) instead of hammering a full or locked database.
      const delay = Math.min(2000, this.cfg.intervalMs * 2 ** Math.min(this.failStreak, 6));
      this.timer = setTimeout(() => this.drainStep(), delay);
    }
  }

  /** Commit one batch, then come back on the next turn so flush and prune requests get in. */
  private drainStep(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = null;
    this.timer = null;
    if (this.queued === 0) return;
    this.commitBatch();
    this.schedule();
  }

  /** Write up to one batch in one transaction, chained from the stored head. False if the database refused. */
  private commitBatch(): boolean {
    const n = Math.min(this.cfg.batchSize, this.queued);
    try {
      this.connection();
      this.append!(this.queue, this.start, n);
    } catch (err) {
      this.commitFailures += 1;
      this.failStreak += 1;
      this.lastError = err instanceof Error ? err.message : String(err);
      // The other thread words the warning: only it knows how many records wait in all.
      send({ t: "failed", s: this.s, commitFailures: this.commitFailures, lastError: this.lastError });
      return false;
    }
    if (this.failStreak > 0)
      send({
        t: "warn",
        s: this.s,
        kind: "recovered",
        message: `writing to ${this.cfg.path} again after ${this.failStreak} failure(s)`,
        always: true,
      });
    this.failStreak = 0;
    this.start += n;
    this.committed += n;
    if (this.start === this.queue.length) {
      // The usual case: all caught up. Let the committed records go while they are young,
      // instead of holding them until the queue is compacted and V8 has moved them to old space.
      this.queue.length = 0;
      this.start = 0;
    } else if (this.start > 4096 && this.start * 2 > this.queue.length) {
      this.queue.splice(0, this.start);
      this.start = 0;
    }
    send({ t: "committed", s: this.s, committed: this.committed });
    return true;
  }

  /** Commit everything received so far, now, whatever the backoff says; throws if the database refuses. */
  flush(): void {
    while (this.queued > 0) {
      if (!this.commitBatch()) {
        this.schedule();
        throw new LogError(
          `cannot write ${this.queued} record(s) to ${this.cfg.path}: ${this.lastError}; they stay queued and are retried`,
        );
      }
    }
  }

  prune(opts: PruneOptions): Promise<PruneResult> {
    return pruneRecords(this.connection(), opts);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.db?.close();
  }
}

const stores = new Map<number, StoreWriter>();

async function handle(m: ToWriter): Promise<void> {
  if (m.t === "open") {
    stores.set(m.s, new StoreWriter(m.s, m.cfg));
    return;
  }
  const store = stores.get(m.s);
  if (!store) {
    if (m.t !== "records") send({ t: "done", s: m.s, id: m.id, ok: false, error: "the log is not open" });
    return;
  }
  switch (m.t) {
    case "records":
      return store.add(decodeBatch(m.utf8));
    case "flush":
      return reply(m.s, m.id, () => store.flush());
    case "prune":
      return reply(m.s, m.id, () => store.prune(m.opts));
    case "close":
      stores.delete(m.s);
      return reply(m.s, m.id, () => store.close());
  }
}

async function reply(s: number, id: number, fn: () => unknown): Promise<void> {
  try {
    const value: unknown = await fn();
    send({ t: "done", s, id, ok: true, value });
  } catch (err) {
    send({ t: "done", s, id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
}

// Messages are handled strictly in order: a flush must see every batch posted before it.
let chain: Promise<void> = Promise.resolve();
port.on("message", (m: ToWriter) => {
  chain = chain.then(() => handle(m));
});
