/**
 * Shields sharing PostgreSQL, against a shield alone on SQLite, measured in the same run.
 *
 * The log: each node hashes its records into its own chain in its local SQLite log (the
 * shield's writer code: decode a batch, hash, insert, commit), and its shipper (store/log-ship.ts)
 * copies what was committed into PostgreSQL's partitioned table in batches, chain columns and
 * all. "SQLite" is the first step alone: records per second into a shield's own log. "PostgreSQL"
 * is the shipper draining N records from such a log into the store: one node alone, then three
 * nodes at once (three shippers, three logs, one server). The chains in PostgreSQL must verify.
 * Each shipping run also prints the CPU per record in this process and in PostgreSQL's, from
 * /proc: on a shared machine it moves with the code, where records per second move with the load.
 *
 * Changes: three real nodes (startManagedShield) share the store; a mode switch or a rule edit
 * is made through one node's admin API (round-robin), and the time until the last of the three
 * applied that revision is read from each node's reload record. Against it: the same API call on
 * a shield alone, whose change is in force when the call returns.
 *
 * PostgreSQL runs with fsync and synchronous commits on, as shipped; SQLite with the shield's
 * default (WAL, synchronous=NORMAL). All of it in this process, on loopback: the three nodes share
 * one event loop, as they would not share a machine in a fleet.
 *
 *   npm run bench:store [-- --rounds R --records N --changes K]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { loadShieldConfig } from "../src/shield/config.js";
import { startManagedShield, type ManagedShield } from "../src/shield/daemon.js";
import { chainAppender, decodeBatch, encodeBatch } from "../src/shield/log/batch.js";
import { normaliseRecord } from "../src/shield/log/record.js";
import { openWritable } from "../src/shield/log/schema.js";
import { LogShipper } from "../src/shield/store/log-ship.js";
import { migrate } from "../src/shield/store/schema.js";
import { verifySharedLog } from "../src/shield/store/pg-log-read.js";
import type { LogRecord } from "../src/shield/types.js";
import { NO_POSTGRES, ROLE, ROLE_PASSWORD, TestPostgres } from "../test/pg/cluster.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    records: { type: "string", default: "40000" },
    changes: { type: "string", default: "150" },
  },
});
const ROUNDS = Math.max(1, Number(values.rounds));
const RECORDS = Math.max(1000, Number(values.records));
const CHANGES = Math.max(10, Number(values.changes));
const BATCH = 512;
const TOKEN = "bench-admin-token-0123456789abcdef0123";

if (NO_POSTGRES !== null) {
  process.stderr.write(`bench:store needs PostgreSQL: ${NO_POSTGRES}\n`);
  process.exit(2);
}

let seed = 42;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}
let made = 0;
function nextRecord(): LogRecord {
  const i = made++;
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
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(path.join(os.tmpdir(), "clawguard-bench-store-"));
const pgd = await TestPostgres.start({ durable: true });
const database = await pgd.database();
const url = pgd.url(database);
const pool = new pg.Pool({
  host: "127.0.0.1",
  port: pgd.port,
  user: ROLE,
  password: ROLE_PASSWORD,
  database,
  max: 8,
});
pool.on("error", () => undefined);
const nodes: ManagedShield[] = [];
let alone: ManagedShield | null = null;
/** Leave no cluster, shield or file behind, whatever happened. */
async function cleanup(): Promise<void> {
  await Promise.all([...nodes, ...(alone ? [alone] : [])].map((n) => n.close(0).catch(() => undefined)));
  await pool.end().catch(() => undefined);
  await pgd.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
try {
  await measure();
} finally {
  await cleanup();
}

async function measure(): Promise<void> {
  await migrate(pool, url);

  /** A node's local log with `n` records, written by the shield's writer; its records/s. */
  function localLog(file: string, n: number): number {
    const db = openWritable(file, "normal");
    const append = chainAppender(db);
    const batches: Uint8Array[] = [];
    for (let done = 0; done < n; done += BATCH)
      batches.push(encodeBatch(Array.from({ length: Math.min(BATCH, n - done) }, nextRecord)));
    const t = performance.now();
    for (const utf8 of batches) {
      const lines = decodeBatch(utf8);
      append(lines, 0, lines.length);
    }
    const rate = n / ((performance.now() - t) / 1000);
    db.close();
    return rate;
  }

  /**
   * Ship each of `files` into the store as node `names[i]`, all at once: each one's records/s,
   * and the CPU each record took in this process (read, encode, send) and in PostgreSQL, in us.
   */
  async function ship(names: string[], files: string[], n: number): Promise<Shipped> {
    const shippers = names.map((name, i) => new LogShipper(pool, name, files[i]!, () => undefined));
    const cpu0 = process.cpuUsage();
    const pg0 = pgd.cpuSeconds();
    const t0 = performance.now();
    const times = await Promise.all(
      shippers.map(async (s) => {
        await s.drain();
        return performance.now() - t0;
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    const pgCpu = pgd.cpuSeconds() - pg0;
    await Promise.all(shippers.map((s) => s.close()));
    const records = n * names.length;
    return {
      rates: times.map((ms) => n / (ms / 1000)),
      nodeUs: (cpu.user + cpu.system) / records,
      pgUs: (pgCpu * 1e6) / records,
    };
  }

  interface Shipped {
    rates: number[];
    nodeUs: number;
    pgUs: number;
  }
  interface LogRound {
    sqlite: number;
    one: Shipped;
    three: Shipped;
  }
  const logRounds: LogRound[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const files = ["solo", "a", "b", "c"].map((n) => path.join(dir, `r${round}-${n}.db`));
    const sqliteRates = files.map((f) => localLog(f, RECORDS));
    const one = await ship([`r${round}-solo`], [files[0]!], RECORDS);
    const three = await ship(
      ["a", "b", "c"].map((n) => `r${round}-${n}`),
      files.slice(1),
      RECORDS,
    );
    logRounds.push({ sqlite: median(sqliteRates), one, three });
    const us = (s: Shipped) =>
      `CPU/record ${s.nodeUs.toFixed(1)} us here + ${s.pgUs.toFixed(1)} us PostgreSQL`;
    process.stderr.write(
      `log round ${round + 1}: SQLite ${sqliteRates.map((r) => r.toFixed(0)).join("/")}/s; PostgreSQL one node ${one.rates[0]!.toFixed(0)}/s (${us(one)}), three ${three.rates.map((r) => r.toFixed(0)).join("/")}/s (${us(three)})\n`,
    );
  }
  const verified = await verifySharedLog(pool);
  const shippedTotal = verified.nodes.reduce((s, n) => s + n.count, 0);
  if (!verified.ok || shippedTotal !== ROUNDS * 4 * RECORDS) {
    process.stderr.write(
      `the chains in PostgreSQL do not verify: ${JSON.stringify(verified).slice(0, 500)}\n`,
    );
    process.exitCode = 1;
  }

  // Changes through one node's API, applied by all three.
  const policy = `fleets:
  acme: { isolation: isolated }
agents:
  - { id: scout, fleet: acme, token_sha256: "${"0".repeat(64)}", allow: [example.com] }
`;
  function nodeFile(name: string, store: boolean): string {
    const d = mkdtempSync(path.join(dir, `node-${name}-`));
    writeFileSync(path.join(d, "admin.token"), TOKEN + "\n", { mode: 0o600 });
    writeFileSync(path.join(d, "pg.password"), ROLE_PASSWORD + "\n", { mode: 0o600 });
    const file = path.join(d, "shield.yaml");
    writeFileSync(
      file,
      `${store ? `node: ${name}\nstore: { postgres: "${url}", password_file: pg.password }\n` : ""}listen: 127.0.0.1:0
log: { path: shield.db }
admin: { listen: 127.0.0.1:0, token_file: admin.token }
${policy}`,
    );
    return file;
  }
  async function start(file: string): Promise<ManagedShield> {
    return startManagedShield(await loadShieldConfig(file), {
      watch: false,
      warn: () => undefined,
      resolver: async () => [],
    });
  }
  function change(m: ManagedShield, k: number): Promise<Response> {
    const [method, p, body] =
      k % 4 === 0
        ? ["PUT", "/api/mode", { scope: "fleet", id: "acme", mode: "lockdown" }]
        : k % 4 === 1
          ? ["POST", "/api/rules", { level: "global", verdict: "allow", rule: "bench.example" }]
          : k % 4 === 2
            ? ["PUT", "/api/mode", { scope: "fleet", id: "acme", mode: null }]
            : ["DELETE", "/api/rules", { level: "global", verdict: "allow", rule: "bench.example" }];
    return fetch(`http://127.0.0.1:${m.admin!.port}${p}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }
  const revisionOf = (m: ManagedShield) =>
    Number(/^store revision (\d+)$/.exec(m.control.lastReload?.trigger ?? "")?.[1] ?? 0);

  for (const name of ["a", "b", "c"]) nodes.push(await start(nodeFile(name, true)));
  alone = await start(nodeFile("alone", false));
  const everyNode: number[] = [];
  const callShared: number[] = [];
  const callAlone: number[] = [];
  for (let k = 0; k < CHANGES; k++) {
    const origin = nodes[k % 3]!;
    const before = Math.max(...nodes.map(revisionOf));
    const t0 = Date.now();
    let t = performance.now();
    const res = await change(origin, k);
    callShared.push(performance.now() - t);
    if (!res.ok) throw new Error(`change ${k} failed: HTTP ${res.status} ${await res.text()}`);
    const deadline = Date.now() + 10_000;
    while (nodes.some((n) => revisionOf(n) <= before)) {
      if (Date.now() > deadline) throw new Error(`change ${k} did not reach every node in 10 s`);
      await sleep(2);
    }
    everyNode.push(Math.max(...nodes.map((n) => n.control.lastReload!.at)) - t0);
    t = performance.now();
    const r2 = await change(alone!, k);
    callAlone.push(performance.now() - t);
    if (!r2.ok) throw new Error(`change ${k} on the shield alone failed: HTTP ${r2.status}`);
    await sleep(rand(50));
  }

  const f0 = (x: number) => x.toFixed(0);
  const f1 = (x: number) => x.toFixed(1);
  const oneRate = (r: LogRound) => r.one.rates[0]!;
  const slowest = (r: LogRound) => Math.min(...r.three.rates);
  const perNodeThree = logRounds.map(slowest);
  const cpuCells = (s: (r: LogRound) => Shipped) =>
    `${f1(median(logRounds.map((r) => s(r).nodeUs)))} | ${f1(median(logRounds.map((r) => s(r).pgUs)))}`;
  const out = [
    `${ROUNDS} round(s) of ${RECORDS} records per log; ${CHANGES} changes; PostgreSQL with fsync on; load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
    "",
    "| log records per second, median over rounds | records/s | / SQLite | CPU us/record: shipper | PostgreSQL |",
    "| --- | --- | --- | --- | --- |",
    `| SQLite: a shield's own log (hash, insert, commit) | ${f0(median(logRounds.map((r) => r.sqlite)))} | 1.00 | | |`,
    `| PostgreSQL, one node shipping | ${f0(median(logRounds.map(oneRate)))} | ${median(logRounds.map((r) => oneRate(r) / r.sqlite)).toFixed(2)} | ${cpuCells((r) => r.one)} |`,
    `| PostgreSQL, three nodes at once: slowest node | ${f0(median(perNodeThree))} | ${median(logRounds.map((r) => slowest(r) / r.sqlite)).toFixed(2)} | ${cpuCells((r) => r.three)} |`,
    // All three logs are in when the slowest is: 3 x N records over its time.
    `| PostgreSQL, three nodes at once: all together | ${f0(3 * median(perNodeThree))} | ${median(logRounds.map((r) => (3 * slowest(r)) / r.sqlite)).toFixed(2)} | | |`,
    "",
    `chains in PostgreSQL: ${verified.ok ? "verified" : "BROKEN"}, ${shippedTotal} records of ${verified.nodes.length} nodes`,
    "",
    "| a change, ms | p50 | p99 | max |",
    "| --- | --- | --- | --- |",
    `| sharing PostgreSQL: until all three nodes applied it | ${f1(quantile(everyNode, 0.5))} | ${f1(quantile(everyNode, 0.99))} | ${f1(Math.max(...everyNode))} |`,
    `| sharing PostgreSQL: the API call on the node that made it | ${f1(quantile(callShared, 0.5))} | ${f1(quantile(callShared, 0.99))} | ${f1(Math.max(...callShared))} |`,
    `| a shield alone: the API call (in force when it returns) | ${f1(quantile(callAlone, 0.5))} | ${f1(quantile(callAlone, 0.99))} | ${f1(Math.max(...callAlone))} |`,
    "",
    `p99 to every node / p99 of a shield alone: ${(quantile(everyNode, 0.99) / quantile(callAlone, 0.99)).toFixed(1)}`,
    "",
  ];
  process.stdout.write(out.join("\n"));
}
