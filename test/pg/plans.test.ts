/**
 * Every query the shared log serves reads through an index, on a table large enough that the
 * planner would rather scan it otherwise: the plans PostgreSQL chooses for the very queries
 * `querySharedLog` and `verifySharedLog` send, read back with EXPLAIN. (Retention's
 * `dropDaysBefore` reads whole partitions on purpose: it takes each node's last record of the
 * days it drops, and drops them.)
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DAY_MS, Partitions } from "../../src/shield/store/pg-log.js";
import { CHAIN_PAGE, sharedLogQuery } from "../../src/shield/store/pg-log-read.js";
import { migrate } from "../../src/shield/store/schema.js";
import type { LogFilter } from "../../src/shield/log/query.js";
import { changeMethods, operatorRule } from "../../src/shield/log/changes.js";
import { describePg, NO_POSTGRES, PG_TIMEOUT, ROLE, ROLE_PASSWORD, TestPostgres } from "./pg-harness.js";

let pgd: TestPostgres;
let db: pg.Pool;
const ROWS = 300_000;
const DAYS = 3;
const today = Math.floor(Date.now() / DAY_MS);
const start = (today - DAYS + 1) * DAY_MS;

beforeAll(async () => {
  if (NO_POSTGRES !== null) return;
  pgd = await TestPostgres.start();
  const database = await pgd.database();
  db = new pg.Pool({
    host: "127.0.0.1",
    port: pgd.port,
    user: ROLE,
    password: ROLE_PASSWORD,
    database,
    max: 2,
  });
  db.on("error", () => undefined);
  await migrate(db, database);
  await new Partitions(db).ensure(Array.from({ length: DAYS }, (_, d) => today - d));
  // Three nodes' chains over three days, in arrival order: 30 agents (and requests without one),
  // 300 hosts under 37 domains, a tenth denied; an agent and a host seen once in a thousand, whose
  // records a walk by time would have to pass thousands of others to find. The hashes are not real: no query here checks them.
  await db.query(
    `INSERT INTO clawguard.log_records (node, id, part_ts, ts, agent, fleet, tier, source_address, method,
       host, host_rev, port, path, decision, rule, reason, upstream_address, bytes_up, bytes_down, duration_ms,
       prev_hash, hash)
     SELECT 'node-' || (i % 3), i / 3 + 1, t, t, CASE WHEN i % 31 = 0 THEN NULL WHEN i % 1009 = 0 THEN 'agent-rare' ELSE 'agent-' || (i % 30) END,
       'fleet-a', 'tier-1', '10.0.0.1', 'CONNECT', h, reverse(h), 443, NULL,
       CASE WHEN i % 10 = 0 THEN 'denied' ELSE 'allowed' END, NULL, 'allowed by rule', NULL, 1, 2, 3,
       md5(i::text) || md5(i::text), md5((i + 1)::text) || md5((i + 1)::text)
     FROM (SELECT i, $1::bigint + i * ($2::bigint / $3::bigint) AS t,
             CASE WHEN i % 997 = 0 THEN 'rare.example.org'
               ELSE 'svc' || (i * 7919 % 300) || '.example' || (i * 7919 % 300 % 37) || '.com' END AS h
           FROM generate_series(0::bigint, $3::bigint - 1) AS i) x`,
    [start, DAYS * DAY_MS - 1, ROWS],
  );
  // What autovacuum's ANALYZE would know, and no more.
  await db.query("ANALYZE clawguard.log_records");
}, PG_TIMEOUT);
afterAll(async () => {
  await db?.end();
  await pgd?.stop();
});

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}

/** The plan's nodes that read a table, as "Seq Scan log_records_20261207" or "Index Scan <index>". */
async function scans(text: string, values: unknown[]): Promise<string[]> {
  const r = await db.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
    `EXPLAIN (FORMAT JSON) ${text}`,
    values,
  );
  const out: string[] = [];
  const walk = (n: PlanNode) => {
    if (n["Node Type"].endsWith("Scan"))
      out.push(`${n["Node Type"]} ${n["Index Name"] ?? n["Relation Name"] ?? ""}`);
    n.Plans?.forEach(walk);
  };
  walk(r.rows[0]!["QUERY PLAN"][0]!.Plan);
  return out;
}

const mid = start + Math.floor((DAYS * DAY_MS) / 2);
const listings: Array<[string, LogFilter & { node?: string }, RegExp]> = [
  ["the newest records", { order: "desc" }, /_ts_idx$/],
  ["the oldest records", { order: "asc" }, /_ts_idx$/],
  ["a busy agent's records", { agent: "agent-7", order: "desc" }, /_idx$/],
  ["a rare agent's records", { agent: "agent-rare", order: "desc" }, /_agent_ts_idx$/],
  ["a busy host's records", { host: "svc42.example5.com", order: "desc" }, /_idx$/],
  ["a rare host's records", { host: "rare.example.org", order: "desc" }, /_host_rev_ts_idx$/],
  ["a rare domain's records", { host: "*.example.org", order: "asc" }, /_host_rev_ts_idx$/],
  ["an hour's records", { since: mid, until: mid + 3_600_000, order: "desc" }, /_ts_idx$/],
  ["a node's newest records", { node: "node-1", order: "desc" }, /_idx$|_pkey$/],
  ["the denials", { decision: "denied", order: "desc" }, /_ts_idx$/],
  [
    "an agent's denials in an hour",
    { agent: "agent-7", decision: "denied", since: mid, until: mid + 3_600_000 },
    /_idx$/,
  ],
  ["records arriving after the newest seen", { afterId: ROWS - 500 }, /_seq_idx$/],
  ["an agent's records arriving after the newest seen", { agent: "agent-7", afterId: ROWS - 500 }, /_idx$/],
];

describePg("the shared log's queries use its indexes", () => {
  for (const [what, filter, index] of listings)
    it(`reads ${what} through an index`, async () => {
      const { text, values } = sharedLogQuery(filter);
      const found = await scans(text, values);
      expect(found.length).toBeGreaterThan(0);
      for (const s of found) expect(s, found.join("; ")).not.toMatch(/^Seq Scan/);
      // Each partition through an index (a bitmap scan's heap part names its table instead).
      const indexed = found.filter((s) => !s.startsWith("Bitmap Heap Scan"));
      expect(indexed.length).toBeGreaterThanOrEqual(DAYS);
      for (const s of indexed) expect(s, found.join("; ")).toMatch(index);
    });

  it("walks a node's chain for verify-log through the primary key", async () => {
    for (const from of [1, 40_000]) {
      const found = await scans(CHAIN_PAGE, ["node-2", from]);
      expect(found.length).toBeGreaterThan(0);
      for (const s of found) expect(s).toMatch(/^Index Scan .*_pkey$/);
    }
  });

  it("follows the newest arrivals in arrival order", async () => {
    const { text, values } = sharedLogQuery({ afterId: ROWS - 500 });
    const got = (await db.query<{ seq: string }>(text, values)).rows.map((r) => Number(r.seq));
    expect(got).toEqual(Array.from({ length: 500 }, (_, k) => ROWS - 500 + k + 1));
  });

  it("answers an exact host and a wildcard with the records a scan finds", async () => {
    for (const host of ["svc42.example5.com", "*.example5.com"]) {
      const { text, values } = sharedLogQuery({ host, order: "desc", limit: 100_000 });
      const got = (await db.query<{ node: string; id: string }>(text, values)).rows.map(
        (r) => `${r.node}/${r.id}`,
      );
      const pattern = host.startsWith("*.") ? `%${host.slice(1)}` : host;
      const all = await db.query<{ node: string; id: string }>(
        "SELECT node, id FROM clawguard.log_records WHERE host LIKE $1 ORDER BY ts DESC, node, id DESC",
        [pattern],
      );
      expect(got.length).toBeGreaterThan(100);
      expect(got).toEqual(all.rows.map((r) => `${r.node}/${r.id}`));
    }
  });

  it("keeps a scoped operator to their fleets' records, and finds one operator's changes", async () => {
    // A few records of another fleet, and changes by two operators, among the 300,000.
    const add = (id: number, fleet: string | null, method: string, rule: string | null) =>
      db.query(
        `INSERT INTO clawguard.log_records (node, id, part_ts, ts, agent, fleet, tier, source_address, method,
           host, host_rev, port, path, decision, rule, reason, upstream_address, bytes_up, bytes_down,
           duration_ms, prev_hash, hash)
         VALUES ('node-x', $1, $2, $2, NULL, $3, NULL, '', $4, '', '', 0, NULL, 'allowed', $5, 'r', NULL, 0, 0, 0, '', '')`,
        [id, Date.now(), fleet, method, rule],
      );
    const [change] = changeMethods();
    await add(1, "fleet-b", "CONNECT", null);
    await add(2, "fleet-b", change!, operatorRule("olga"));
    await add(3, null, change!, operatorRule("olga"));
    await add(4, null, change!, operatorRule("oscar"));
    await add(5, null, "CONNECT", operatorRule("olga"));
    const ids = async (f: Parameters<typeof sharedLogQuery>[0]) => {
      const { text, values } = sharedLogQuery({ ...f, order: "desc", limit: 100_000 });
      return (await db.query<{ node: string; id: string }>(text, values)).rows
        .filter((r) => r.node === "node-x")
        .map((r) => Number(r.id))
        .sort();
    };
    expect(await ids({ fleets: ["fleet-b"] })).toEqual([1, 2]);
    const { text, values } = sharedLogQuery({ fleets: ["fleet-b"], limit: 100_000 });
    expect((await db.query<{ fleet: string }>(text, values)).rows.every((r) => r.fleet === "fleet-b")).toBe(
      true,
    );
    expect(
      (await db.query(sharedLogQuery({ fleets: [] }).text, sharedLogQuery({ fleets: [] }).values)).rowCount,
    ).toBe(0);
    // A change record names its operator; a request whose rule happens to read so is no change.
    expect(await ids({ operator: "olga" })).toEqual([2, 3]);
    expect(await ids({ operator: "olga", fleets: ["fleet-b"] })).toEqual([2]);
  });
});
