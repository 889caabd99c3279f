/**
 * The shipper's COPY into PostgreSQL, straight from a node's SQLite log: every value arrives as
 * the local log holds it, text that COPY's format gives a meaning to included, and the chains
 * verify. Batches cross the shipper's batch size so that read-ahead and consecutive COPYs run.
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { chainAppender, decodeBatch, encodeBatch } from "../../src/shield/log/batch.js";
import { queryRecords } from "../../src/shield/log/query.js";
import { normaliseRecord } from "../../src/shield/log/record.js";
import { openWritable } from "../../src/shield/log/schema.js";
import { LogShipper } from "../../src/shield/store/log-ship.js";
import { querySharedLog, verifySharedLog } from "../../src/shield/store/pg-log-read.js";
import { migrate } from "../../src/shield/store/schema.js";
import type { LogRecord } from "../../src/shield/types.js";
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

/** Text COPY escapes or could misread: separators, backslashes, its NULL marker, a lone "\.". */
const awkward: LogRecord[] = [
  {
    ts: Date.now() - 5000,
    agent: "tab\there",
    fleet: "\\N",
    tier: 'back\\slash "quoted"',
    sourceAddress: "10.0.0.1",
    method: "GET",
    host: "b\u00fccher.\u{1F600}.example",
    port: 8080,
    path: "/a\nb\r\nc\\.\n\\.\u2028\u0001",
    decision: "allowed",
    rule: "",
    reason: "line\nbreak\\ttab \u00ff",
    upstreamAddress: null,
    bytesUp: 0,
    bytesDown: Number.MAX_SAFE_INTEGER,
    durationMs: 12,
  },
  {
    ts: Date.now() - 4000,
    agent: null,
    fleet: null,
    tier: null,
    sourceAddress: "::1",
    method: "CONNECT",
    host: "\\.",
    port: 443,
    path: null,
    decision: "denied",
    rule: null,
    reason: "\\",
    upstreamAddress: "\t",
    bytesUp: 1,
    bytesDown: 2,
    durationMs: 3,
  },
];

function pool(database: string): pg.Pool {
  const p = new pg.Pool({ host: "127.0.0.1", port: pgd.port, user: ROLE, password: ROLE_PASSWORD, database });
  p.on("error", () => undefined);
  return p;
}

describePg("shipping a node's log into PostgreSQL", () => {
  it("copies every record as the local log holds it, in batches, and the chain verifies", async () => {
    const database = await pgd.database();
    const db = pool(database);
    const file = tempDb();
    const local = openWritable(file, "normal");
    // More than two of the shipper's batches, with the awkward records among them.
    const records = [
      ...awkward,
      ...Array.from({ length: 9000 }, (_, i) => record(i)),
      ...awkward.map((r) => ({ ...r, ts: Date.now() })),
    ].map(normaliseRecord);
    const append = chainAppender(local);
    const lines = decodeBatch(encodeBatch(records));
    append(lines, 0, 3000);
    const shipper = new LogShipper(db, "node-a", file, () => undefined);
    try {
      await migrate(db, database);
      await shipper.drain();
      append(lines, 3000, lines.length - 3000);
      await shipper.drain();
      const v = await verifySharedLog(db);
      expect(v).toMatchObject({ ok: true, nodes: [{ node: "node-a", count: records.length }] });
      expect(shipper.health()).toMatchObject({ backlog: 0, shipped: records.length, lastError: null });

      // Field for field what the local log holds, for the awkward ones and a plain one.
      const mine = queryRecords(local, { limit: 100_000 });
      const shared = new Map(
        (await querySharedLog(db, { node: "node-a", limit: 100_000 })).map((r) => [r.id, r]),
      );
      expect(shared.size).toBe(records.length);
      for (const id of [1, 2, 4500, records.length - 1, records.length]) {
        const { node, seq, ...fields } = shared.get(id)!;
        expect(node).toBe("node-a");
        expect(seq).toBeGreaterThan(0);
        expect(fields).toEqual(mine[id - 1]);
      }
      // The host index column reads back too: a wildcard finds the awkward host.
      expect((await querySharedLog(db, { host: "*.\u{1F600}.example" })).map((r) => r.id)).toEqual([
        1,
        records.length - 1,
      ]);
    } finally {
      await shipper.close();
      local.close();
      await db.end();
    }
  });
});
