import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { verifySharedLog } from "../../src/shield/store/pg-log-read.js";
import { cli } from "../shield/cli-harness.js";
import { Upstream, sha256 } from "../shield/proxy-harness.js";
import { ROLE, ROLE_PASSWORD, describePg, NO_POSTGRES, PG_TIMEOUT, TestPostgres } from "./pg-harness.js";
import { type Node, nodeDir, removeNodeDirs, proxyGet, startNode, until } from "./nodes-harness.js";

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "node-child.ts");
const SCOUT = "scout-proxy-password";
const policy = `agents:
  - { id: scout, token_sha256: "${sha256(SCOUT)}", allow: [127.0.0.3/32] }
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

describePg("a node killed mid-load", () => {
  it("loses no record it committed, and every chain verifies once it is back", async () => {
    const database = await pgd.database();
    const url = pgd.url(database);
    const noResolver = { resolve: async () => [] };
    const nodes: Node[] = [await startNode("a", url, policy, { resolver: noResolver.resolve })];
    nodes.push(await startNode("b", url, policy, { resolver: noResolver.resolve }));
    const cDir = nodeDir("c", url, policy);
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, cDir.file], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<string | number | null>((r) =>
      child.on("exit", (code, signal) => r(signal ?? code)),
    );
    const cPort = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        const m = /ready (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", () => reject(new Error(`node c did not start: ${stderr}`)));
    });
    const db = new pg.Pool({
      host: "127.0.0.1",
      port: pgd.port,
      user: ROLE,
      password: ROLE_PASSWORD,
      database,
    });
    db.on("error", () => undefined);
    let restarted: Node | null = null;
    try {
      const target = `http://127.0.0.3:${web.port}/`;
      const stop = { now: false };
      const answered = { a: 0, b: 0, c: 0 };
      const send = async (name: "a" | "b" | "c", port: () => number) => {
        while (!stop.now) if ((await proxyGet(port(), target, "scout", SCOUT)) === 200) answered[name] += 1;
      };
      const running = Promise.all([
        send("a", () => nodes[0]!.proxyPort),
        send("b", () => nodes[1]!.proxyPort),
        (async () => {
          while (!stop.now && answered.c < 300)
            if ((await proxyGet(cPort, target, "scout", SCOUT)) === 200) answered.c += 1;
          child.kill("SIGKILL");
        })(),
      ]);
      expect(await exited).toBe("SIGKILL");
      await new Promise((r) => setTimeout(r, 500));
      stop.now = true;
      await running;

      // What c committed to its own log before it died is what must reach PostgreSQL.
      const local = new Database(path.join(cDir.dir, "shield.db"), { readonly: true });
      const committed = (local.prepare("SELECT count(*) AS n FROM records").get() as { n: number }).n;
      local.close();
      expect(committed).toBeGreaterThan(200);
      restarted = await startNode("c", url, policy, { resolver: noResolver.resolve, dir: cDir });
      for (const n of nodes) await n.managed.log.flush();
      const count = async (node: string) =>
        Number(
          (await db.query("SELECT count(*) AS n FROM clawguard.log_records WHERE node = $1", [node])).rows[0]
            .n,
        );
      await until(async () => (await count("c")) >= committed, "c's records in PostgreSQL", 20_000);
      await until(
        async () => (await count("a")) === answered.a && (await count("b")) === answered.b,
        "a's and b's",
        20_000,
      );
      expect(await count("c")).toBe(committed);
      const v = await verifySharedLog(db);
      expect(v).toMatchObject({ ok: true });
      expect(v.nodes.map((n) => [n.node, n.count])).toEqual([
        ["a", answered.a],
        ["b", answered.b],
        ["c", committed],
      ]);
      // And as an operator would ask: verify-log through any node's config names nothing broken.
      const cliVerify = await cli("shield", "verify-log", "--config", cDir.file);
      expect(cliVerify.code).toBe(0);
      expect(cliVerify.out).not.toMatch(/BROKEN/);
      expect(cliVerify.out.match(/^node [abc]: intact/gm)).toHaveLength(3);
    } finally {
      child.kill("SIGKILL");
      await db.end();
      await Promise.all([...nodes, ...(restarted ? [restarted] : [])].map((n) => n.close()));
    }
  });
});
