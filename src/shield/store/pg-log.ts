/**
 * Every node's audit records in one PostgreSQL table, partitioned by day. Each node's records
 * keep the id, prev_hash and hash its own chain gave them, so verifying a node needs nobody
 * else's records, and no node ever waits on another to write. Retention drops whole days.
 */
import type pg from "pg";
import { GENESIS_HASH, RECORD_COLUMNS, type RecordRow, type StoredRecord } from "../log/record.js";
import { copyIn, copyValue } from "./pg-copy.js";
import { checkout, withSchemaLock } from "./schema.js";

export const DAY_MS = 86_400_000;

/** A record of one node's chain, as the shipper reads it from the node's own log. */
export interface ChainRecord extends StoredRecord {
  node: string;
}

export interface LogHead {
  headId: number;
  headHash: string;
  headPartTs: number;
  checkpointId: number;
  checkpointHash: string;
}

export function partitionName(day: number): string {
  const d = new Date(day * DAY_MS);
  return `log_records_${d.toISOString().slice(0, 10).replace(/-/g, "")}`;
}

/** Where `node`'s chain stands in PostgreSQL (a new node starts at genesis). */
export async function readHead(db: pg.Pool | pg.ClientBase, node: string): Promise<LogHead> {
  const r = await db.query("SELECT * FROM clawguard.log_heads WHERE node = $1", [node]);
  const h = r.rows[0];
  if (!h)
    return {
      headId: 0,
      headHash: GENESIS_HASH,
      headPartTs: 0,
      checkpointId: 0,
      checkpointHash: GENESIS_HASH,
    };
  return {
    headId: Number(h.head_id),
    headHash: h.head_hash,
    headPartTs: Number(h.head_part_ts),
    checkpointId: Number(h.checkpoint_id),
    checkpointHash: h.checkpoint_hash,
  };
}

/** Day partitions known to exist: asked of PostgreSQL once, then created as records need them. */
export class Partitions {
  private readonly known = new Set<number>();

  constructor(private readonly pool: pg.Pool) {}

  async ensure(days: Iterable<number>): Promise<void> {
    const missing = [...new Set(days)].filter((d) => !this.known.has(d));
    if (missing.length === 0) return;
    await withSchemaLock(this.pool, async (c) => {
      for (const day of missing) {
        await c.query(
          `CREATE TABLE IF NOT EXISTS clawguard.${partitionName(day)} PARTITION OF clawguard.log_records
           FOR VALUES FROM (${day * DAY_MS}) TO (${(day + 1) * DAY_MS})`,
        );
      }
    });
    for (const d of missing) this.known.add(d);
  }

  forget(): void {
    this.known.clear();
  }
}

/** The COPY's columns: the node's name and the record's day, then the record as both logs store it. */
const COPY = `COPY clawguard.log_records (node, part_ts, ${RECORD_COLUMNS.join(", ")}) FROM STDIN`;

/** What the shipper reads of each record of a node's own log (SQLite) after an id: its stored row. */
export const LOCAL_ROWS = `SELECT ${RECORD_COLUMNS.join(", ")} FROM records WHERE id > ? ORDER BY id LIMIT ?`;
const ID = RECORD_COLUMNS.indexOf("id");
const TS = RECORD_COLUMNS.indexOf("ts");
const HASH = RECORD_COLUMNS.indexOf("hash");

/** Consecutive records of a node's chain, ready to COPY. */
export interface ChainBatch {
  count: number;
  lastId: number;
  lastHash: string;
  /** The last record's part_ts. */
  partTs: number;
  days: Set<number>;
  text: Buffer;
}

/**
 * The COPY text of `rows` (stored rows, `RECORD_COLUMNS`) of `node`'s chain, following a record whose part_ts is `partTs`. Each
 * record's part_ts is the largest ts along the chain so far, never past `now`: a clock far ahead
 * on one request must not keep the records after it from their day. Written straight into one
 * buffer, so a batch waiting for PostgreSQL holds no object per record.
 */
export function chainBatch(node: string, partTs: number, rows: Iterable<RecordRow>, now: number): ChainBatch {
  const prefix = copyValue(node) + "\t";
  const batch: ChainBatch = {
    count: 0,
    lastId: 0,
    lastHash: "",
    partTs,
    days: new Set(),
    text: Buffer.alloc(0),
  };
  let buf = Buffer.allocUnsafe(1 << 20);
  let length = 0;
  for (const row of rows) {
    batch.partTs = Math.max(batch.partTs, Math.min(row[TS] as number, now));
    batch.days.add(Math.floor(batch.partTs / DAY_MS));
    let text = `${prefix}${batch.partTs}`;
    for (const v of row) text += "\t" + copyValue(v);
    text += "\n";
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    if (length + text.length * 3 > buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, length + text.length * 3));
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    length += buf.write(text, length);
    batch.count += 1;
    batch.lastId = row[ID] as number;
    batch.lastHash = row[HASH] as string;
  }
  batch.text = buf.subarray(0, length);
  return batch;
}

/**
 * Append `batch` (consecutive records, after the stored head) to `node`'s chain in one
 * transaction with its new head, so a crash leaves the head and the rows in step.
 */
export async function appendChain(
  pool: pg.Pool,
  partitions: Partitions,
  node: string,
  head: LogHead,
  batch: ChainBatch,
): Promise<LogHead> {
  if (batch.count === 0) return head;
  const { days, partTs } = batch;
  await partitions.ensure(days);
  const next: LogHead = { ...head, headId: batch.lastId, headHash: batch.lastHash, headPartTs: partTs };
  const client = await checkout(pool);
  try {
    await client.query("BEGIN");
    await copyIn(client, COPY, batch.text);
    await client
      .query(
        `INSERT INTO clawguard.log_heads (node, head_id, head_hash, head_part_ts, checkpoint_id, checkpoint_hash)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (node) DO UPDATE SET head_id = EXCLUDED.head_id, head_hash = EXCLUDED.head_hash, head_part_ts = EXCLUDED.head_part_ts
       WHERE log_heads.head_id = $7`,
        [node, next.headId, next.headHash, partTs, head.checkpointId, head.checkpointHash, head.headId],
      )
      .then((r) => {
        // Another process wrote this node's chain meanwhile: two shields run with one node name.
        if (r.rowCount === 0)
          throw new Error(
            `the chain of node ${node} moved on under this process: is another shield running as node ${node}?`,
          );
      });
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    client.done(true);
    throw e;
  }
  client.done();
  return next;
}

export interface PruneDaysResult {
  dropped: string[];
}

/**
 * Drop the day partitions that end before `before`, moving each node's checkpoint to the last
 * record dropped, in one transaction: verify then starts after the checkpoint, from its hash.
 */
export async function dropDaysBefore(pool: pg.Pool, before: number): Promise<PruneDaysResult> {
  return withSchemaLock(pool, async (c) => {
    const parts = await c.query<{ name: string; bound: string }>(
      `SELECT child.relname AS name, pg_get_expr(child.relpartbound, child.oid) AS bound
       FROM pg_inherits JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
       JOIN pg_class child ON child.oid = pg_inherits.inhrelid
       JOIN pg_namespace ns ON ns.oid = parent.relnamespace
       WHERE ns.nspname = 'clawguard' AND parent.relname = 'log_records'`,
    );
    const old = parts.rows.filter((p) => {
      const m = /TO \('?(\d+)'?\)/.exec(p.bound);
      return m !== null && Number(m[1]) <= before;
    });
    if (old.length === 0) return { dropped: [] };
    const list = old.map((p) => `clawguard.${p.name}`).join(", ");
    // The last record of each node in the days going: its id and hash become the checkpoint.
    const cut = await c.query(
      `SELECT DISTINCT ON (node) node, id, hash FROM (${old.map((p) => `SELECT node, id, hash FROM clawguard.${p.name}`).join(" UNION ALL ")}) x
       ORDER BY node, id DESC`,
    );
    for (const r of cut.rows)
      await c.query(
        "UPDATE clawguard.log_heads SET checkpoint_id = $2, checkpoint_hash = $3 WHERE node = $1 AND checkpoint_id < $2",
        [r.node, r.id, r.hash],
      );
    await c.query(`DROP TABLE ${list}`);
    return { dropped: old.map((p) => p.name) };
  });
}
