/**
 * What each index of the shared log's table costs PostgreSQL per shipped record: the same node
 * logs shipped by the real shipper (one node, then three at once) into the log table as each
 * variant below defines it, the variants taking turns round by round on one server (fsync and
 * synchronous commits on), so that a slow stretch of a shared machine falls on all of them. It
 * prints each variant's CPU per record in PostgreSQL and in the shipper (from /proc), medians
 * over the rounds, and each round's figures; the chains must verify after every variant.
 *
 *   npm run bench:store-indexes [-- --rounds R --records N --variants v1,v3,...]
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { chainAppender, decodeBatch, encodeBatch } from "../src/shield/log/batch.js";
import { normaliseRecord } from "../src/shield/log/record.js";
import { openWritable } from "../src/shield/log/schema.js";
import { LogShipper } from "../src/shield/store/log-ship.js";
import { verifySharedLog } from "../src/shield/store/pg-log-read.js";
import { migrate } from "../src/shield/store/schema.js";
import { NO_POSTGRES, ROLE, ROLE_PASSWORD, TestPostgres } from "../test/pg/cluster.js";

const COLUMNS = (seq: boolean, collate: string) => `
  node text${collate} NOT NULL, id bigint NOT NULL, part_ts bigint NOT NULL,
  ${seq ? "seq bigint GENERATED ALWAYS AS IDENTITY," : ""}
  ts bigint NOT NULL, agent text${collate}, fleet text, tier text, source_address text NOT NULL,
  method text NOT NULL, host text NOT NULL, host_rev text${collate} NOT NULL, port integer NOT NULL,
  path text, decision text NOT NULL, rule text, reason text NOT NULL, upstream_address text,
  bytes_up bigint NOT NULL, bytes_down bigint NOT NULL, duration_ms bigint NOT NULL,
  prev_hash text NOT NULL, hash text NOT NULL, PRIMARY KEY (node, id, part_ts)`;
const table = (seq: boolean, collate: string, ...indexes: string[]) =>
  `CREATE TABLE clawguard.log_records (${COLUMNS(seq, collate)}) PARTITION BY RANGE (part_ts);` +
  indexes.map((i) => `CREATE INDEX ON clawguard.log_records ${i};`).join("");
const C = ' COLLATE "C"';
const AGENT = "(agent, ts) WHERE agent IS NOT NULL";
/** The log table as schema version 1 made it, as version 3 makes it, and what was measured beside. */
const VARIANTS: Record<string, string> = {
  v1: table(true, "", "(ts)", "(seq)", "(agent, ts)", "(host_rev, ts)"),
  v3: table(true, C, "(ts)", "(seq)", AGENT, "(host_rev, ts)"),
  "v3-seq-brin": table(true, C, "(ts)", "USING brin (seq)", AGENT, "(host_rev, ts)"),
  "v3-ts-brin": table(true, C, "USING brin (ts)", "(seq)", AGENT, "(host_rev, ts)"),
  "v3-no-seq": table(false, C, "(ts)", AGENT, "(host_rev, ts)"),
  "v3-agent-host-without-ts": table(
    true,
    C,
    "(ts)",
    "(seq)",
    "(agent) WHERE agent IS NOT NULL",
    "(host_rev)",
  ),
  "no-agent-host": table(true, C, "(ts)", "(seq)"),
  "pk-only": table(true, C),
};

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "6" },
    records: { type: "string", default: "20000" },
    variants: { type: "string", default: "v1,v3,no-agent-host,pk-only" },
  },
});
const ROUNDS = Math.max(1, Number(values.rounds));
const RECORDS = Math.max(1000, Number(values.records));
const chosen = values.variants.split(",");
for (const v of chosen)
  if (!(v in VARIANTS)) {
    process.stderr.write(`unknown variant ${v}; known: ${Object.keys(VARIANTS).join(", ")}\n`);
    process.exit(2);
  }
if (NO_POSTGRES !== null) {
  process.stderr.write(`bench:store-indexes needs PostgreSQL: ${NO_POSTGRES}\n`);
  process.exit(2);
}

let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
/** The records bench/shield-store.ts ships: 30 agents, 300 hosts under 37 domains. */
function record(i: number) {
  const h = rand(300);
  const allowed = rand(10) > 0;
  return normaliseRecord({
    ts: Date.now() - 60_000 + (i % 1000),
    agent: `agent-${rand(30)}`,
    fleet: "fleet-a",
    tier: `tier-${rand(4)}`,
    sourceAddress: `10.0.${rand(4)}.${rand(250) + 1}`,
    method: rand(3) ? "CONNECT" : "GET",
    host: `svc${h}.example${h % 37}.com`,
    port: 443,
    path: rand(3) ? null : `/v1/items/${rand(100_000)}`,
    decision: allowed ? "allowed" : rand(2) ? "denied" : "audited",
    rule: allowed ? `tier:tier-${rand(4)} allow *.example${h % 37}.com` : null,
    reason: allowed ? "allowed by rule" : "no rule allows this host",
    upstreamAddress: allowed ? `203.0.113.${rand(250) + 1}` : null,
    bytesUp: rand(100_000),
    bytesDown: rand(10_000_000),
    durationMs: rand(60_000),
  });
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const dir = mkdtempSync(path.join(os.tmpdir(), "clawguard-bench-indexes-"));
const pgd = await TestPostgres.start({ durable: true });
const database = await pgd.database();
const pool = new pg.Pool({
  host: "127.0.0.1",
  port: pgd.port,
  user: ROLE,
  password: ROLE_PASSWORD,
  database,
  max: 8,
});
pool.on("error", () => undefined);
try {
  await migrate(pool, database);
  const files = ["solo", "a", "b", "c"].map((n) => path.join(dir, `${n}.db`));
  let made = 0;
  for (const file of files) {
    const db = openWritable(file, "normal");
    const append = chainAppender(db);
    for (let done = 0; done < RECORDS; done += 512) {
      const lines = decodeBatch(
        encodeBatch(Array.from({ length: Math.min(512, RECORDS - done) }, () => record(made++))),
      );
      append(lines, 0, lines.length);
    }
    db.close();
  }
  /** CPU us per record in this process and in PostgreSQL while `names` ship `logs` at once. */
  async function ship(names: string[], logs: string[]): Promise<{ node: number; pg: number }> {
    const shippers = names.map((name, i) => new LogShipper(pool, name, logs[i]!, () => undefined));
    const cpu0 = process.cpuUsage();
    const pg0 = pgd.cpuSeconds();
    await Promise.all(shippers.map((s) => s.drain()));
    const cpu = process.cpuUsage(cpu0);
    const pgCpu = pgd.cpuSeconds() - pg0;
    await Promise.all(shippers.map((s) => s.close()));
    const n = RECORDS * names.length;
    return { node: (cpu.user + cpu.system) / n, pg: (pgCpu * 1e6) / n };
  }
  const got: Record<
    string,
    Array<{ one: { node: number; pg: number }; three: { node: number; pg: number } }>
  > = {};
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order, so that no variant always follows the same one.
    for (const v of round % 2 ? [...chosen].reverse() : chosen) {
      await pool.query("DROP TABLE clawguard.log_records; DELETE FROM clawguard.log_heads");
      await pool.query(VARIANTS[v]!);
      const one = await ship(["solo"], [files[0]!]);
      const three = await ship(["a", "b", "c"], files.slice(1));
      const verified = await verifySharedLog(pool);
      if (!verified.ok) throw new Error(`the chains do not verify after ${v}: ${JSON.stringify(verified)}`);
      (got[v] ??= []).push({ one, three });
      process.stderr.write(
        `round ${round + 1} ${v}: PostgreSQL ${one.pg.toFixed(1)} / ${three.pg.toFixed(1)} us, shipper ${one.node.toFixed(1)} / ${three.node.toFixed(1)} us\n`,
      );
    }
  }
  const f1 = (x: number) => x.toFixed(1);
  const out = [
    `${ROUNDS} round(s) of ${RECORDS} records per log; load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
    "",
    "| log table | PostgreSQL us/record, one / three nodes | shipper us/record | PostgreSQL, three nodes, each round |",
    "| --- | --- | --- | --- |",
    ...chosen.map((v) => {
      const rs = got[v]!;
      return `| ${v} | ${f1(median(rs.map((r) => r.one.pg)))} / ${f1(median(rs.map((r) => r.three.pg)))} | ${f1(median(rs.map((r) => r.one.node)))} / ${f1(median(rs.map((r) => r.three.node)))} | ${rs.map((r) => f1(r.three.pg)).join(" ")} |`;
    }),
    "",
  ];
  process.stdout.write(out.join("\n"));
} finally {
  await pool.end().catch(() => undefined);
  await pgd.stop();
  rmSync(dir, { recursive: true, force: true });
}
