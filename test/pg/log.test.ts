import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { verifySharedLog } from "../../src/shield/store/pg-log-read.js";
import { cli } from "../shield/cli-harness.js";
import { TableResolver, Upstream, sha256, v4 } from "../shield/proxy-harness.js";
import { ROLE, ROLE_PASSWORD, describePg, NO_POSTGRES, PG_TIMEOUT, TestPostgres } from "./pg-harness.js";
import { type Node, removeNodeDirs, startNode, until } from "./nodes-harness.js";

const SCOUT = "scout-proxy-password";
const resolver = new TableResolver({ "web.test": v4("127.0.0.3"), "else.test": v4("127.0.0.3") });
const policy = `agents:
  - { id: scout, token_sha256: "${sha256(SCOUT)}", allow: [web.test, 127.0.0.3/32] }
`;

let pgd: TestPostgres;
let web: Upstream;
beforeAll(async () => {
  if (NO_POSTGRES !== null) return;
  [pgd, web] = await Promise.all([TestPostgres.start(), new Upstream("127.0.0.3").start()]);
}, PG_TIMEOUT);
afterAll(async () => {
  removeNodeDirs();
  await Promise.all([pgd?.stop(), web?.stop()]);
});

function pool(database: string): pg.Pool {
  const p = new pg.Pool({
    host: "127.0.0.1",
    port: pgd.port,
    user: ROLE,
    password: ROLE_PASSWORD,
    database,
    max: 2,
  });
  p.on("error", () => undefined);
  return p;
}

async function stored(db: pg.Pool): Promise<number> {
  return Number((await db.query("SELECT count(*) AS n FROM clawguard.log_records")).rows[0].n);
}

/**
 * Requests through every node until `stop`, alternately allowed and denied; each answer must be
 * the right one. Returns how many were answered; `live` counts them by node as they come.
 */
function load(
  nodes: Node[],
  stop: { now: boolean },
  wrong: string[],
  live: Record<string, number> = {},
): Promise<number> {
  return Promise.all(
    nodes.map(async (n) => {
      let answered = 0;
      live[n.name] = 0;
      for (let i = 0; !stop.now; i++) {
        const allowed = i % 2 === 0;
        const status = await n.get(
          `http://${allowed ? "web" : "else"}.test:${web.port}/${i}`,
          "scout",
          SCOUT,
        );
        if (status === 0) continue;
        answered += 1;
        live[n.name]! += 1;
        if (status !== (allowed ? 200 : 403)) wrong.push(`${n.name} #${i}: ${status}`);
      }
      return answered;
    }),
  ).then((counts) => counts.reduce((a, b) => a + b, 0));
}

describePg("the log of three nodes in PostgreSQL", () => {
  it("keeps enforcing while PostgreSQL is down, loses no record, and every chain verifies", async () => {
    const database = await pgd.database();
    const url = pgd.url(database);
    const nodes = [await startNode("a", url, policy, { resolver: resolver.resolve })];
    nodes.push(
      ...(await Promise.all(
        ["b", "c"].map((n) => startNode(n, url, policy, { resolver: resolver.resolve })),
      )),
    );
    const db = pool(database);
    try {
      const stop = { now: false };
      const wrong: string[] = [];
      const live: Record<string, number> = {};
      const running = load(nodes, stop, wrong, live);
      await new Promise((r) => setTimeout(r, 1500));
      pgd.stopServer();
      // Every node notices, says so, and goes on deciding as before.
      for (const n of nodes)
        await until(
          async () => (await n.api("GET", "/api/status")).json.store.reachable === false,
          `${n.name} notices`,
        );
      const metrics = await fetch(`http://127.0.0.1:${nodes[0]!.managed.admin!.port}/metrics`, {
        headers: { authorization: `Bearer ${(await import("../shield/admin-harness.js")).ADMIN_TOKEN}` },
      }).then((r) => r.text());
      expect(metrics).toMatch(/^clawguard_shield_store_up 0$/m);
      const noticed = { ...live };
      await new Promise((r) => setTimeout(r, 2000));
      // Every node went on answering while PostgreSQL was away (and answered right: below).
      for (const n of nodes) expect(live[n.name]! - noticed[n.name]!, n.name).toBeGreaterThan(10);
      pgd.startServer();
      await new Promise((r) => setTimeout(r, 1500));
      stop.now = true;
      const answered = await running;
      expect(wrong).toEqual([]);
      expect(answered).toBeGreaterThan(100);
      for (const n of nodes) await n.managed.log.flush();
      await until(async () => (await stored(db)) >= answered, `${answered} records in PostgreSQL`, 30_000);
      expect(await stored(db)).toBe(answered);
      for (const n of nodes) expect((await n.api("GET", "/api/status")).json.store.reachable).toBe(true);
      const v = await verifySharedLog(db);
      expect(v.ok).toBe(true);
      expect(v.nodes.map((n) => n.node)).toEqual(["a", "b", "c"]);
      expect(v.nodes.reduce((s, n) => s + n.count, 0)).toBe(answered);

      // The API and `shield log` read every node's records as one log.
      const api = (await nodes[1]!.api("GET", "/api/log?limit=1000")).json.records as Array<{ node: string }>;
      expect(new Set(api.map((r) => r.node))).toEqual(new Set(["a", "b", "c"]));
      const listed = await cli(
        "shield",
        "log",
        "--config",
        nodes[2]!.file,
        "--json",
        "--limit",
        "5",
        "--decision",
        "denied",
      );
      expect(listed.code).toBe(0);
      const records = JSON.parse(listed.out).records as Array<{ decision: string; host: string }>;
      expect(records).toHaveLength(5);
      expect(records.every((r) => r.decision === "denied" && r.host === "else.test")).toBe(true);

      // A row changed in PostgreSQL is named with its node and record.
      const ok = await cli("shield", "verify-log", "--config", nodes[0]!.file);
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(/^node b: intact, \d+ record\(s\)/m);
      await db.query("UPDATE clawguard.log_records SET host = 'evil.test' WHERE node = 'b' AND id = 7");
      const broken = await cli("shield", "verify-log", "--config", nodes[0]!.file);
      expect(broken.code).toBe(1);
      expect(broken.out).toMatch(
        /^node b: BROKEN at record 7: node b, record 7: its contents do not match its hash/m,
      );
      expect(broken.out).toMatch(/^node a: intact/m);
      expect(broken.out).toMatch(/^node c: intact/m);
      await db.query("DELETE FROM clawguard.log_records WHERE node = 'c' AND id = 3");
      const json = JSON.parse((await cli("shield", "verify-log", "--config", nodes[0]!.file, "--json")).out);
      expect(json.nodes.find((n: { node: string }) => n.node === "c")).toMatchObject({
        ok: false,
        firstBadId: 3,
      });
    } finally {
      await db.end();
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
