import net from "node:net";
import { writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadShieldConfig } from "../../src/shield/config.js";
import { startManagedShield } from "../../src/shield/daemon.js";
import { STORE_SCHEMA_VERSION } from "../../src/shield/store/schema.js";
import { dropDaysBefore, DAY_MS } from "../../src/shield/store/pg-log.js";
import { verifySharedLog } from "../../src/shield/store/pg-log-read.js";
import { cli } from "../shield/cli-harness.js";
import { Upstream, sha256 } from "../shield/proxy-harness.js";
import { ROLE, ROLE_PASSWORD, describePg, NO_POSTGRES, PG_TIMEOUT, TestPostgres } from "./pg-harness.js";
import { nodeDir, removeNodeDirs, startNode, until } from "./nodes-harness.js";

const SCOUT = "scout-proxy-password";
const ROVER = "rover-proxy-password";
const policy = `fleets:
  acme: { isolation: isolated }
agents:
  - id: scout
    fleet: acme
    token_sha256: "${sha256(SCOUT)}"
    allow: [127.0.0.3/32]
    budget: { requests: 5, window: 1h }
  - { id: rover, token_sha256: "${sha256(ROVER)}", allow: [127.0.0.3/32] }
`;
const noResolver = async () => [];

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

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Whether anything accepts a connection on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/** Start a node from `file`, expecting a refusal; also checks its proxy port never listened. */
async function refused(file: string, port: number): Promise<Error & { code?: string }> {
  const err = await startManagedShield(await loadShieldConfig(file), {
    watch: false,
    warn: () => undefined,
  }).then(
    async (m) => {
      await m.close(0);
      throw new Error("the shield started");
    },
    (e: unknown) => e as Error & { code?: string },
  );
  expect(await listening(port)).toBe(false);
  return err;
}

describePg("a node's restart", () => {
  it("keeps mode switches and budget counts", async () => {
    const url = pgd.url(await pgd.database());
    const a = await startNode("a", url, policy, { resolver: noResolver });
    const target = `http://127.0.0.3:${web.port}/`;
    try {
      for (let i = 0; i < 3; i++) expect(await a.get(target, "scout", SCOUT)).toBe(200);
      expect(
        (await a.api("PUT", "/api/mode", { scope: "agent", id: "rover", mode: "lockdown" })).status,
      ).toBe(200);
      await a.restart();
      expect(await a.get(target, "rover", ROVER)).toBe(403);
      expect(await a.get(target, "scout", SCOUT)).toBe(200);
      expect(await a.get(target, "scout", SCOUT)).toBe(200);
      // Five of five spent, three of them before the restart.
      expect(await a.get(target, "scout", SCOUT)).toBe(403);
      const agents = (await a.api("GET", "/api/agents")).json.agents as Array<{
        id: string;
        budgetUse: { used: number };
      }>;
      expect(agents.find((x) => x.id === "scout")?.budgetUse.used).toBe(5);
    } finally {
      await a.close();
    }
  });
});

describePg("moving agents between nodes", () => {
  it("moves one agent, drains a node to the others, and refuses a node that does not exist", async () => {
    const url = pgd.url(await pgd.database());
    const a = await startNode("a", url, policy, { resolver: noResolver });
    const b = await startNode("b", url, policy, { resolver: noResolver });
    const owners = async () =>
      Object.fromEntries(
        ((await b.api("GET", "/api/agents")).json.agents as Array<{ id: string; node: string }>).map((x) => [
          x.id,
          x.node,
        ]),
      );
    try {
      // The node that seeded the store carries every agent of its file.
      expect(await owners()).toEqual({ scout: "a", rover: "a" });
      const moved = await cli("shield", "move", "scout", "--to", "b", "--admin", a.admin, "--config", a.file);
      console.log("MOVED", JSON.stringify(moved));
      expect(moved).toMatchObject({ code: 0, out: "scout: moved from a to b\n" });
      await until(async () => (await owners()).scout === "b", "b to see the move");
      const drained = await cli("shield", "drain", "a", "--admin", b.admin, "--config", b.file, "--json");
      expect(JSON.parse(drained.out).moved).toEqual([{ agent: "rover", to: "b" }]);
      await until(async () => (await owners()).rover === "b", "the drain");
      const nodes = await cli("shield", "nodes", "--admin", a.admin, "--config", a.file);
      expect(nodes.out).toMatch(/^a \(this\) +alive +0 /m);
      expect(nodes.out).toMatch(/^b +alive +2 /m);
      const bad = await cli("shield", "move", "scout", "--to", "zed", "--admin", a.admin, "--config", a.file);
      expect(bad.code).toBe(2);
      expect(bad.err).toMatch(/HTTP 404 \(to\): unknown node "zed"/);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describePg("starting against a store that cannot be used", () => {
  it("refuses a store migrated by a newer clawguard, naming both versions", async () => {
    const database = await pgd.database();
    const a = await startNode("a", pgd.url(database), policy, { resolver: noResolver });
    await a.managed.close(0);
    await pgd.sql(
      `INSERT INTO clawguard.schema_version (version) VALUES (${STORE_SCHEMA_VERSION + 1})`,
      database,
    );
    const port = await freePort();
    const { file } = nodeDir("b", pgd.url(database), policy);
    writeFileSync(
      file,
      (await import("node:fs"))
        .readFileSync(file, "utf8")
        .replace("listen: 127.0.0.1:0", `listen: 127.0.0.1:${port}`),
    );
    const err = await refused(file, port);
    expect(err.code).toBe("CG_STORE_SCHEMA_NEWER");
    expect(err.message).toMatch(
      new RegExp(
        `schema version ${STORE_SCHEMA_VERSION + 1}; this clawguard knows up to ${STORE_SCHEMA_VERSION}`,
      ),
    );
  });

  it("refuses an unreachable store and a wrong password at first start, and never listens", async () => {
    const port = await freePort();
    const nobody = await freePort();
    const unreachable = nodeDir("a", `postgres://${ROLE}@127.0.0.1:${nobody}/nothing`, policy);
    writeFileSync(
      unreachable.file,
      (await import("node:fs"))
        .readFileSync(unreachable.file, "utf8")
        .replace("listen: 127.0.0.1:0", `listen: 127.0.0.1:${port}`),
    );
    const down = await refused(unreachable.file, port);
    expect(down.code).toBe("CG_STORE_UNREACHABLE");
    expect(down.message).toMatch(
      /store\.postgres: PostgreSQL at clawguard@127\.0\.0\.1:\d+\/nothing is unreachable/,
    );
    expect(down.message).toMatch(/never ran against it/);

    const wrong = nodeDir("a", pgd.url(await pgd.database()), policy);
    writeFileSync(path.join(wrong.dir, "pg.password"), "not-the-password\n", { mode: 0o600 });
    writeFileSync(
      wrong.file,
      (await import("node:fs"))
        .readFileSync(wrong.file, "utf8")
        .replace("listen: 127.0.0.1:0", `listen: 127.0.0.1:${port}`),
    );
    const denied = await refused(wrong.file, port);
    expect(denied.code).toBe("CG_STORE_AUTH");
    expect(denied.message).toMatch(/refused the credentials/);
  });
});

describePg("log retention in the store", () => {
  it("drops whole days, and the chains still verify from where they were cut", async () => {
    const database = await pgd.database();
    const a = await startNode("a", pgd.url(database), policy, { resolver: noResolver });
    const db = pool(database);
    try {
      for (let i = 0; i < 4; i++) await a.get(`http://127.0.0.3:${web.port}/`, "rover", ROVER);
      await a.managed.log.flush();
      await until(
        async () =>
          Number((await db.query("SELECT count(*) AS n FROM clawguard.log_records")).rows[0].n) === 4,
        "4 records",
      );
      // Pretend the first two are from three days ago: their day's partition is the one to go.
      const old = Math.floor(Date.now() / DAY_MS - 3) * DAY_MS;
      await db.query(`CREATE TABLE clawguard.old_day (LIKE clawguard.log_records INCLUDING DEFAULTS)`);
      await db.query(
        `INSERT INTO clawguard.old_day SELECT * FROM clawguard.log_records WHERE id <= 2; DELETE FROM clawguard.log_records WHERE id <= 2;`,
      );
      await db.query(`UPDATE clawguard.old_day SET part_ts = ${old}`);
      await db.query(
        `ALTER TABLE clawguard.log_records ATTACH PARTITION clawguard.old_day FOR VALUES FROM (${old}) TO (${old + DAY_MS})`,
      );
      expect(await verifySharedLog(db)).toMatchObject({ ok: true, nodes: [{ node: "a", count: 4 }] });
      const r = await dropDaysBefore(db, Date.now() - 2 * DAY_MS);
      expect(r.dropped).toEqual(["old_day"]);
      expect(await verifySharedLog(db)).toMatchObject({
        ok: true,
        nodes: [{ node: "a", count: 2, fromId: 2 }],
      });
      // The day of today is not touched.
      expect((await dropDaysBefore(db, Date.now() - 2 * DAY_MS)).dropped).toEqual([]);
    } finally {
      await db.end();
      await a.close();
    }
  });
});

describePg("a node restarted while PostgreSQL is down", () => {
  it("starts with the last policy it had, says so, and follows the store again once it answers", async () => {
    const url = pgd.url(await pgd.database());
    const a = await startNode("a", url, policy, { resolver: noResolver });
    const target = `http://127.0.0.3:${web.port}/`;
    try {
      expect(
        (await a.api("PUT", "/api/mode", { scope: "agent", id: "rover", mode: "lockdown" })).status,
      ).toBe(200);
      pgd.stopServer();
      try {
        await a.restart();
        expect(a.warnings.join("\n")).toMatch(
          /is unreachable while starting .*; starting with the last policy this node had \(revision \d+\)/,
        );
        // The lockdown made before the outage holds; an agent it never knew is refused.
        expect(await a.get(target, "rover", ROVER)).toBe(403);
        expect(await a.get(target, "scout", SCOUT)).toBe(200);
        expect(await a.get(target, "nobody", "nobody-password")).toBe(407);
        const status = (await a.api("GET", "/api/status")).json.store;
        expect(status).toMatchObject({ reachable: false, node: "a" });
        expect(status.unreachableSince).toEqual(expect.any(Number));
      } finally {
        pgd.startServer();
      }
      await until(
        async () => (await a.api("GET", "/api/status")).json.store.reachable === true,
        "the store to answer again",
      );
      // Its records of the outage (three requests) reach the store once it answers, after the
      // record of the operator's mode switch made before it.
      await a.managed.log.flush();
      const db = pool(url.slice(url.lastIndexOf("/") + 1));
      try {
        await until(
          async () =>
            Number((await db.query("SELECT count(*) AS n FROM clawguard.log_records")).rows[0].n) === 4,
          "4 records in the store",
        );
      } finally {
        await db.end();
      }
    } finally {
      await a.close();
    }
  });
});
