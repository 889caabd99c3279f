/**
 * A store that an older clawguard filled (schema version 1) moves to the log's cheaper indexes
 * (version 3) with its rows: every query answers as before, the chains verify, the indexes are
 * the new ones on every partition, and shipping and following carry on across the change.
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { chainAppender, decodeBatch, encodeBatch } from "../../src/shield/log/batch.js";
import { normaliseRecord } from "../../src/shield/log/record.js";
import { openWritable } from "../../src/shield/log/schema.js";
import { LogShipper } from "../../src/shield/store/log-ship.js";
import { querySharedLog, verifySharedLog } from "../../src/shield/store/pg-log-read.js";
import { migrate, schemaVersion, STORE_SCHEMA_VERSION } from "../../src/shield/store/schema.js";
import type { LogFilter } from "../../src/shield/log/query.js";
import { record, tempDb } from "../shield/log-helpers.js";
import { describePg, NO_POSTGRES, PG_TIMEOUT, ROLE, ROLE_PASSWORD, TestPostgres } from "./pg-harness.js";

let pgd: TestPostgres;
beforeAll(async () => {
  if (NO_POSTGRES !== null) return;
  pgd = await TestPostgres.start();
}, PG_TIMEOUT);
afterAll(async () => {
  await pgd?.stop();
});

/** The queries `shield log` and /api/log send, each answered as node/id in the order returned. */
const FILTERS: Array<LogFilter & { node?: string }> = [
  { order: "desc", limit: 100_000 },
  { order: "asc", limit: 100_000 },
  { agent: "agent-1", limit: 100_000 },
  { agent: "t\u00e9st\tagent", limit: 100_000 },
  { host: "api.openai.com", order: "desc", limit: 100_000 },
  { host: "*.anthropic.com", limit: 100_000 },
  { host: "*.\u{1F600}.example", limit: 100_000 },
  { node: "node-b", decision: "denied", limit: 100_000 },
  { since: 1_700_000_000_000 + 1_000_000, until: 1_700_000_000_000 + 2_000_000, limit: 100_000 },
  { afterId: 4000, limit: 100_000 },
];

async function answers(db: pg.Pool): Promise<string[][]> {
  const out: string[][] = [];
  for (const f of FILTERS) out.push((await querySharedLog(db, f)).map((r) => `${r.node}/${r.id}`));
  return out;
}

describePg("moving a filled store to the log's version 3 indexes", () => {
  it("keeps every row and answer, verifies, and ships and follows on afterwards", async () => {
    const database = await pgd.database();
    const db = new pg.Pool({
      host: "127.0.0.1",
      port: pgd.port,
      user: ROLE,
      password: ROLE_PASSWORD,
      database,
    });
    db.on("error", () => undefined);
    const logs = ["node-a", "node-b"].map(() => tempDb());
    const appenders = logs.map((file) => {
      const local = openWritable(file, "normal");
      return { local, append: chainAppender(local) };
    });
    const write = (from: number, to: number) => {
      const records = Array.from({ length: to - from }, (_, k) => {
        const i = from + k;
        // Text the byte order sorts otherwise than a locale would, and requests without an agent.
        if (i % 97 === 0)
          return record(i, { agent: "t\u00e9st\tagent", host: `b\u00fccher.\u{1F600}.example` });
        return i % 13 === 0 ? record(i, { agent: null }) : record(i);
      });
      const lines = decodeBatch(encodeBatch(records.map(normaliseRecord)));
      for (const a of appenders) a.append(lines, 0, lines.length);
    };
    const ship = async () => {
      const shippers = logs.map((file, i) => new LogShipper(db, `node-${"ab"[i]}`, file, () => undefined));
      try {
        await Promise.all(shippers.map((s) => s.drain()));
      } finally {
        await Promise.all(shippers.map((s) => s.close()));
      }
    };
    try {
      await migrate(db, database, 1);
      expect(await schemaVersion(db)).toBe(1);
      write(0, 9000);
      await ship();
      const before = await answers(db);
      expect(before.every((a) => a.length > 0)).toBe(true);
      const seqBefore = await db.query("SELECT node, id, seq FROM clawguard.log_records ORDER BY seq");

      await migrate(db, database);
      expect(STORE_SCHEMA_VERSION).toBe(3);
      expect(await schemaVersion(db)).toBe(3);
      expect(await answers(db)).toEqual(before);
      expect((await db.query("SELECT node, id, seq FROM clawguard.log_records ORDER BY seq")).rows).toEqual(
        seqBefore.rows,
      );
      expect(await verifySharedLog(db)).toMatchObject({
        ok: true,
        nodes: [
          { node: "node-a", count: 9000 },
          { node: "node-b", count: 9000 },
        ],
      });

      // The indexes on the table and on each of its partitions.
      const indexes = await db.query<{ table: string; am: string; def: string }>(
        `SELECT c.relname AS table, am.amname AS am, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_am am ON am.oid = ic.relam JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'clawguard' AND c.relname LIKE 'log_records%'`,
      );
      const tables = new Set(indexes.rows.map((r) => r.table));
      expect(tables.size).toBeGreaterThanOrEqual(2);
      for (const t of tables) {
        const defs = indexes.rows.filter((r) => r.table === t);
        expect(defs.map((d) => d.am)).toEqual(["btree", "btree", "btree", "btree", "btree"]);
        expect(defs.some((d) => /\(seq\)$/.test(d.def))).toBe(true);
        expect(defs.find((d) => /\(agent, ts\)/.test(d.def))?.def).toMatch(/WHERE \(agent IS NOT NULL\)$/);
      }
      const collations = await db.query<{ column: string; collation: string | null }>(
        `SELECT column_name AS column, collation_name AS collation FROM information_schema.columns
         WHERE table_schema = 'clawguard' AND table_name = 'log_records' AND column_name IN ('node', 'agent', 'host_rev')`,
      );
      expect(collations.rows.map((r) => r.collation)).toEqual(["C", "C", "C"]);

      // Shipping carries on from each node's head; a follower sees the new records, in order.
      const newest = Number((await db.query("SELECT max(seq) AS m FROM clawguard.log_records")).rows[0].m);
      write(9000, 12_000);
      await ship();
      expect(await verifySharedLog(db)).toMatchObject({
        ok: true,
        nodes: [
          { node: "node-a", count: 12_000 },
          { node: "node-b", count: 12_000 },
        ],
      });
      const followed = await querySharedLog(db, { afterId: newest, limit: 100_000 });
      expect(followed).toHaveLength(6000);
      expect(followed.map((r) => r.seq)).toEqual(followed.map((r) => r.seq).sort((a, b) => a - b));
      expect(followed.every((r) => r.id > 9000)).toBe(true);

      // Migrating again changes nothing.
      await migrate(db, database);
      expect((await db.query("SELECT version FROM clawguard.schema_version ORDER BY version")).rows).toEqual([
        { version: 1 },
        { version: 2 },
        { version: 3 },
      ]);
    } finally {
      for (const a of appenders) a.local.close();
      await db.end();
    }
  });
});
