/**
 * The audit log writer's cost per record, against a floor measured in the same run.
 *
 * "writer" is the shield's own code on this thread: `decodeBatch` on what `encodeBatch` made of a
 * batch (the proxy's thread does the encoding; its cost is printed too), then `chainAppender`
 * hashing it into the chain and committing it to a log made by `openWritable`, with every index.
 * "floor" is a bare better-sqlite3 insert of the same rows, one transaction per batch, in WAL
 * mode with the same synchronous setting, into a table of the same columns with no index, no
 * hashing and no decoding. Each gets its own database, grown by the same batches round after
 * round; the two alternate within each round, and the ratio printed is the median over rounds of
 * the ratio within a round, since the machine drifts between fast and slow stretches.
 *
 *   npm run bench:shield-log [-- --rounds N --batches B --batch-size S --hosts H --agents A]
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { chainAppender, decodeBatch, encodeBatch } from "../src/shield/log/batch.js";
import { normaliseRecord, recordFields, reverseHost } from "../src/shield/log/record.js";
import { openWritable } from "../src/shield/log/schema.js";
import { verifyChain } from "../src/shield/log/verify.js";
import type { LogRecord } from "../src/shield/types.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    batches: { type: "string", default: "20" },
    "batch-size": { type: "string", default: "512" },
    hosts: { type: "string", default: "300" },
    agents: { type: "string", default: "30" },
  },
});
const ROUNDS = Math.max(3, Number(values.rounds));
const WARMUP = 2;
const BATCHES = Math.max(1, Number(values.batches));
const BATCH_SIZE = Math.max(1, Number(values["batch-size"]));
const HOSTS = Math.max(1, Number(values.hosts));
const AGENTS = Math.max(1, Number(values.agents));

// Deterministic, so runs compare.
let seed = 42;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}

let made = 0;
/** A record as the proxy appends it: mostly allowed, ts roughly but not strictly increasing. */
function nextRecord(): LogRecord {
  const i = made++;
  const h = rand(HOSTS);
  const allowed = rand(10) > 0;
  return normaliseRecord({
    ts: 1_700_000_000_000 + i * 3 - rand(2000),
    agent: `agent-${rand(AGENTS)}`,
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const dir = mkdtempSync(path.join(os.tmpdir(), "clawguard-bench-log-"));

// The shield's writer, on the shield's schema.
const writerDb = openWritable(path.join(dir, "writer.db"), "normal");
const append = chainAppender(writerDb);

// The floor: the same columns, no index, nothing but the inserts and the commits.
const floorDb = new Database(path.join(dir, "floor.db"));
floorDb.pragma("journal_mode = WAL");
floorDb.pragma("synchronous = NORMAL");
floorDb.exec(`CREATE TABLE records (
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, agent TEXT, fleet TEXT, tier TEXT,
  source_address TEXT NOT NULL, method TEXT NOT NULL, host TEXT NOT NULL, host_rev TEXT NOT NULL,
  port INTEGER NOT NULL, path TEXT, decision TEXT NOT NULL, rule TEXT, reason TEXT NOT NULL,
  upstream_address TEXT, bytes_up INTEGER NOT NULL, bytes_down INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`);
const floorInsert = floorDb.prepare(`INSERT INTO records VALUES (${Array(20).fill("?").join(", ")})`);
const floorBatch = floorDb.transaction((rows: unknown[][]) => {
  for (const row of rows) floorInsert.run(row);
});
let floorId = 0;
const HASH_SIZED = "0123456789abcdef".repeat(4);
function floorRows(records: LogRecord[]): unknown[][] {
  return records.map((r) => {
    const f = recordFields(r);
    // The table's column order: host_rev right after host.
    return [++floorId, ...f.slice(0, 7), reverseHost(r.host), ...f.slice(7), HASH_SIZED, HASH_SIZED];
  });
}

/** Per record, in us: wall time, and CPU time of the process (this thread does all the work). */
interface Round {
  writer: number;
  writerCpu: number;
  floor: number;
  floorCpu: number;
  encode: number;
}
const rounds: Round[] = [];

for (let round = 0; round < ROUNDS; round++) {
  const batches = Array.from({ length: BATCHES }, () => Array.from({ length: BATCH_SIZE }, nextRecord));
  const perRecord = (ms: number) => (ms * 1000) / (BATCHES * BATCH_SIZE);
  const cpuPerRecord = (since: NodeJS.CpuUsage) => {
    const used = process.cpuUsage(since);
    return perRecord((used.user + used.system) / 1000);
  };
  const sample: Partial<Round> = {};

  const runWriter = () => {
    let t = performance.now();
    const encoded = batches.map(encodeBatch);
    sample.encode = perRecord(performance.now() - t);
    t = performance.now();
    const cpu = process.cpuUsage();
    for (const utf8 of encoded) {
      const batch = decodeBatch(utf8);
      append(batch, 0, batch.length);
    }
    sample.writerCpu = cpuPerRecord(cpu);
    sample.writer = perRecord(performance.now() - t);
  };
  const runFloor = () => {
    const rows = batches.map(floorRows);
    const t = performance.now();
    const cpu = process.cpuUsage();
    for (const batch of rows) floorBatch.immediate(batch);
    sample.floorCpu = cpuPerRecord(cpu);
    sample.floor = perRecord(performance.now() - t);
  };
  if (round % 2) {
    runWriter();
    runFloor();
  } else {
    runFloor();
    runWriter();
  }
  if (round >= WARMUP) rounds.push(sample as Round);
}

// What was timed must be a chain verify-log accepts, record for record.
const check = verifyChain(writerDb);
if (!check.ok || check.count !== made) {
  process.stderr.write(`the writer's log does not verify: ${JSON.stringify(check)}\n`);
  process.exitCode = 1;
}
writerDb.close();
floorDb.close();
rmSync(dir, { recursive: true, force: true });

const us = (x: number) => `${x.toFixed(2)} us`;
const med = (key: keyof Round) => us(median(rounds.map((r) => r[key])));
const ratio = (a: keyof Round, b: keyof Round) => median(rounds.map((r) => r[a] / r[b])).toFixed(2);
process.stdout.write(
  [
    `${ROUNDS - WARMUP} rounds (after ${WARMUP} to warm up) of ${BATCHES} batches of ${BATCH_SIZE} records;` +
      ` ${HOSTS} hosts, ${AGENTS} agents; each log ends with ${made} records`,
    "",
    "| per record, median over rounds | wall | CPU |",
    "| --- | --- | --- |",
    `| writer: decode, hash, insert, commit | ${med("writer")} | ${med("writerCpu")} |`,
    `| floor: bare insert and commit, no index | ${med("floor")} | ${med("floorCpu")} |`,
    `| proxy's thread: encode the batch for the writer | ${med("encode")} | |`,
    "",
    `writer / floor: ${ratio("writer", "floor")} wall, ${ratio("writerCpu", "floorCpu")} CPU` +
      " (each the median of the ratio within a round)",
    "",
  ].join("\n"),
);
