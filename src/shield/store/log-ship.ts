/**
 * Ships a node's audit records from its own SQLite log to PostgreSQL. The local log is written
 * first, hash chain and all, exactly as a single shield writes it; this reads what was committed
 * there after the node's head in PostgreSQL and appends it in batches. So the local log is the
 * spool: while PostgreSQL is away records pile up there (nothing is held in memory, and a
 * SIGKILL loses nothing committed), and once it is back they follow in order.
 */
import type Database from "better-sqlite3";
import type pg from "pg";
import { queryRecords } from "../log/query.js";
import type { RecordRow } from "../log/record.js";
import { openReadOnly, readChain } from "../log/schema.js";
import {
  appendChain,
  chainBatch,
  LOCAL_ROWS,
  Partitions,
  readHead,
  type ChainBatch,
  type LogHead,
} from "./pg-log.js";
import { isUnreachable } from "./connect.js";

const BATCH = 4000;
const IDLE_MS = 100;
const RETRY_MS = 1000;

export interface ShipHealth {
  /** Records committed locally and not yet in PostgreSQL. */
  backlog: number;
  shipped: number;
  lastError: string | null;
  /** ms since the epoch of the last batch that reached PostgreSQL. */
  lastShipped: number | null;
}

export class LogShipper {
  private readonly db: Database.Database;
  private readonly rows: Database.Statement<[number, number]>;
  private readonly partitions: Partitions;
  private head: LogHead | null = null;
  /** The batch after `after`, read ahead while the one before it was being written. */
  private ahead: { after: number; batch: ChainBatch } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  private shipped = 0;
  private lastError: string | null = null;
  private lastShipped: number | null = null;

  constructor(
    private readonly pool: pg.Pool,
    readonly node: string,
    readonly logPath: string,
    private readonly warn: (m: string) => void,
  ) {
    this.db = openReadOnly(logPath);
    this.rows = this.db.prepare<[number, number]>(LOCAL_ROWS).raw();
    this.partitions = new Partitions(pool);
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.step();
    }, ms);
    this.timer.unref();
  }

  private step(): Promise<void> {
    this.running ??= this.shipBatch()
      .then((full) => this.schedule(full ? 0 : IDLE_MS))
      .catch((e: unknown) => {
        // A commit cut off midway may or may not have landed: read the head again before the next.
        this.head = null;
        this.ahead = null;
        if (!isUnreachable(e)) this.partitions.forget();
        const message = e instanceof Error ? e.message : String(e);
        if (this.lastError === null)
          this.warn(`cannot write the log to PostgreSQL (${message}); records wait in ${this.logPath}`);
        this.lastError = message;
        this.schedule(RETRY_MS);
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  /**
   * One batch; true when it was full (more may wait). While PostgreSQL takes a full batch, the
   * next one is read from the local log, so that reading and writing overlap when a backlog
   * drains; it is used only if this batch landed and the head is where it left it.
   */
  private async shipBatch(): Promise<boolean> {
    if (this.head === null) this.head = await this.startingHead();
    const from = this.head.headId;
    const batch = this.ahead?.after === from ? this.ahead.batch : this.read(from, this.head.headPartTs);
    this.ahead = null;
    if (batch.count > 0) {
      const sending = appendChain(this.pool, this.partitions, this.node, this.head, batch);
      if (batch.count === BATCH) {
        // Once the batch's queries are on their way (the loop turns between their round trips).
        const reading = new Promise<void>((resolve) =>
          setImmediate(() => {
            if (this.db.open)
              this.ahead = { after: batch.lastId, batch: this.read(batch.lastId, batch.partTs) };
            resolve();
          }),
        );
        await Promise.all([sending, reading]);
      }
      this.head = await sending;
      this.shipped += batch.count;
      this.lastShipped = Date.now();
    }
    if (this.lastError !== null) {
      this.warn("writing the log to PostgreSQL again");
      this.lastError = null;
    }
    return batch.count === BATCH;
  }

  /** The records after `after` in the local log, up to a batch, following a part_ts of `partTs`. */
  private read(after: number, partTs: number): ChainBatch {
    return chainBatch(this.node, partTs, this.rows.iterate(after, BATCH) as Iterable<RecordRow>, Date.now());
  }

  /**
   * The node's head in PostgreSQL, checked against the local log: a local log that does not hold
   * that record with that hash is not the one this node shipped from, and appending to it would
   * fork the chain.
   */
  private async startingHead(): Promise<LogHead> {
    const head = await readHead(this.pool, this.node);
    if (head.headId === 0) return head;
    const local = queryRecords(this.db, { afterId: head.headId - 1, order: "asc", limit: 1 })[0];
    const chain = readChain(this.db);
    const pruned = local === undefined && chain.checkpointId >= head.headId;
    if (!pruned && (local === undefined || local.id !== head.headId || local.hash !== head.headHash)) {
      this.closed = true;
      throw new Error(
        `${this.logPath} does not continue node ${this.node}'s chain in PostgreSQL (head ${head.headId}): it was replaced or another shield runs as ${this.node}; give this shield its own node name or its old log back`,
      );
    }
    return head;
  }

  /** Ship everything committed locally so far; throws if PostgreSQL cannot take it now. */
  async drain(): Promise<void> {
    for (;;) {
      await this.running;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      const localHead = readChain(this.db).headId;
      if (this.head !== null && this.head.headId >= localHead) break;
      const before = this.lastError;
      await this.step();
      if (this.lastError !== null && this.lastError !== before) throw new Error(this.lastError);
      if (this.lastError !== null) throw new Error(this.lastError);
    }
    this.schedule(IDLE_MS);
  }

  health(): ShipHealth {
    const localHead = this.db.open ? readChain(this.db).headId : 0;
    return {
      backlog: this.head === null ? localHead : Math.max(0, localHead - this.head.headId),
      shipped: this.shipped,
      lastError: this.lastError,
      lastShipped: this.lastShipped,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    this.db.close();
  }
}
