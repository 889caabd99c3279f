import Database from "better-sqlite3";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { openLogStore } from "../../src/shield/log/index.js";
import { fromRow, type RawRow } from "../../src/shield/log/query.js";
import { recordHash } from "../../src/shield/log/record.js";
import { cli } from "./cli-harness.js";
import { record, tempDb, tempDir } from "./log-helpers.js";

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src/cli/main.ts");

afterEach(() => vi.restoreAllMocks());

async function logWith(n: number, over: (i: number) => object = () => ({})): Promise<string> {
  const db = tempDb();
  const store = openLogStore(db);
  for (let i = 0; i < n; i++) store.append(record(i, over(i)));
  await store.close();
  return db;
}

describe("clawguard shield log", () => {
  it("prints one line per record: time, agent, decision, method, host:port and path, cause, bytes, reason", async () => {
    const db = await logWith(30);
    const { code, out } = await cli(
      "shield",
      "log",
      "--db",
      db,
      "--agent",
      "agent-1",
      "--decision",
      "denied",
      "--limit",
      "3",
    );
    expect(code).toBe(0);
    const lines = out.trimEnd().split("\n");
    // i = 22, 25, 28 are the newest three of agent-1's denials, printed oldest first.
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(new Date(record(22).ts).toISOString());
    expect(lines[1]).toBe(
      `${new Date(record(25).ts).toISOString()}  agent-1  denied   CONNECT  x.api.anthropic.com:443  -  250↑ 2500↓  request 25`,
    );
    expect(lines[2]).toBe(
      `${new Date(record(28).ts).toISOString()}  agent-1  denied   GET  api.openai.com:443/v1/items/28  -  280↑ 2800↓  request 28`,
    );
    const ruled = await cli(
      "shield",
      "log",
      "--db",
      db,
      "--host",
      "*.openai.com",
      "--agent",
      "agent-0",
      "--limit",
      "1",
    );
    expect(ruled.out).toBe(
      `${new Date(record(24).ts).toISOString()}  agent-0  allowed  GET  api.openai.com:443/v1/items/24  tier:crew allow api.openai.com  240↑ 2400↓  request 24\n`,
    );
  });

  it("has a --json twin with every stored field", async () => {
    const db = await logWith(10);
    const { code, out } = await cli("shield", "log", "--db", db, "--json", "--decision", "audited");
    expect(code).toBe(0);
    const doc = JSON.parse(out) as { schema: string; records: Array<Record<string, unknown>> };
    expect(doc.schema).toBe("clawguard.shield-log/v1");
    expect(doc.records.map((r) => r.id)).toEqual([3, 6, 9]);
    expect(doc.records[0]).toMatchObject({ ...record(2), id: 3 });
    expect(doc.records[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("takes --since and --until as durations ago or ISO times", async () => {
    const now = Date.now();
    const db = await logWith(5, (i) => ({ ts: now - (5 - i) * 3_600_000 })); // 5h, 4h, ... 1h ago
    const recent = await cli("shield", "log", "--db", db, "--since", "150m", "--json");
    expect((JSON.parse(recent.out) as { records: unknown[] }).records).toHaveLength(2);
    const until = new Date(now - 4 * 3_600_000).toISOString();
    const old = await cli("shield", "log", "--db", db, "--until", until, "--json");
    expect((JSON.parse(old.out) as { records: Array<{ id: number }> }).records.map((r) => r.id)).toEqual([
      1, 2,
    ]);
    const bad = await cli("shield", "log", "--db", db, "--since", "yesterday");
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--since takes an ISO time .* not "yesterday"/);
  });

  it("reads the log path from the shield config", async () => {
    const dir = tempDir();
    await logWith(0);
    const store = openLogStore(path.join(dir, "audit.db"));
    store.append(record(0));
    await store.close();
    const config = path.join(dir, "shield.yaml");
    writeFileSync(
      config,
      [
        "listen: 127.0.0.1:3128",
        "log: { path: ./audit.db }",
        "mode: enforce",
        "tiers:",
        "  crew: { allow: [api.openai.com] }",
        "fleets:",
        "  acme: { isolation: isolated }",
        "agents:",
        "  - { id: admiral, fleet: acme, tier: crew, sources: [127.0.0.2/32] }",
        "",
      ].join("\n"),
    );
    const { code, out, err } = await cli("shield", "verify-log", "--config", config);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toMatch(
      new RegExp(
        `^${path.join(dir, "audit.db")}: intact, 1 record\\(s\\), ids 1\\.\\.1\\nhead 1:[0-9a-f]{64}\\n`,
      ),
    );
  });

  it("refuses to guess which log, and names a missing one", async () => {
    expect((await cli("shield", "log")).err).toMatch(/pass --db PATH, or --config shield\.yaml/);
    const missing = await cli("shield", "verify-log", "--db", "/nonexistent/shield.db");
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/no shield log at \/nonexistent\/shield\.db/);
  });
});

describe("clawguard shield verify-log", () => {
  it("exits 0 with the count when intact, and 1 naming the first broken record when not", async () => {
    const db = await logWith(50);
    const ok = await cli("shield", "verify-log", "--db", db);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(
      /: intact, 50 record\(s\), ids 1\.\.50\nhead 50:[0-9a-f]{64}\n {2}keep this line off the shield host/,
    );

    const w = new Database(db);
    w.prepare("UPDATE records SET bytes_down = 0 WHERE id = 7").run();
    w.close();
    const broken = await cli("shield", "verify-log", "--db", db);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/BROKEN at record 7: record 7's contents do not match its hash/);
    const json = await cli("shield", "verify-log", "--db", db, "--json");
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({
      schema: "clawguard.shield-verify-log/v1",
      db,
      ok: false,
      firstBadId: 7,
      count: 6,
    });
  });
});

describe("clawguard shield verify-log --anchor", () => {
  const headOf = (out: string) => /^head (\d+:[0-9a-f]{64})$/m.exec(out)?.[1];

  it("catches a log rewritten whole, its chain recomputed, that the chain alone calls intact", async () => {
    const db = await logWith(50);
    const first = await cli("shield", "verify-log", "--db", db);
    const anchor = headOf(first.out)!;
    expect(anchor).toMatch(/^50:/);
    expect(await cli("shield", "verify-log", "--db", db, "--anchor", anchor)).toMatchObject({ code: 0 });

    // An attacker with the database edits record 7 and recomputes every hash after it.
    const w = new Database(db);
    w.prepare("UPDATE records SET bytes_down = 0 WHERE id = 7").run();
    let prev = (w.prepare("SELECT hash FROM records WHERE id = 6").get() as { hash: string }).hash;
    for (const raw of w.prepare("SELECT * FROM records WHERE id >= 7 ORDER BY id").all() as RawRow[]) {
      const hash = recordHash(raw.id, fromRow(raw), prev);
      w.prepare("UPDATE records SET prev_hash = ?, hash = ? WHERE id = ?").run(prev, hash, raw.id);
      prev = hash;
    }
    w.prepare("UPDATE chain SET head_hash = ? WHERE one = 1").run(prev);
    w.close();
    const fooled = await cli("shield", "verify-log", "--db", db);
    expect(fooled.code).toBe(0);
    const caught = await cli("shield", "verify-log", "--db", db, "--anchor", anchor);
    expect(caught.code).toBe(1);
    expect(caught.out).toMatch(
      /BROKEN at record 50: record 50's hash differs from a copy of its hash kept elsewhere/,
    );
  });

  it("catches records cut off the end with the head moved back, and says which anchors were pruned", async () => {
    const db = await logWith(20);
    const anchor = headOf((await cli("shield", "verify-log", "--db", db)).out)!;
    const w = new Database(db);
    w.prepare("DELETE FROM records WHERE id > 15").run();
    const h = (w.prepare("SELECT hash FROM records WHERE id = 15").get() as { hash: string }).hash;
    w.prepare("UPDATE chain SET head_id = 15, head_hash = ? WHERE one = 1").run(h);
    w.close();
    expect((await cli("shield", "verify-log", "--db", db)).code).toBe(0);
    const caught = await cli("shield", "verify-log", "--db", db, "--anchor", anchor, "--json");
    expect(caught.code).toBe(1);
    expect(JSON.parse(caught.out)).toMatchObject({ ok: false, firstBadId: 20 });

    const bad = await cli("shield", "verify-log", "--db", db, "--anchor", "x:y");
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not an anchor: expected ID:HASH/);
  });

  it("checks an anchor at the retention checkpoint, and names anchors retention pruned", async () => {
    const db = await logWith(20);
    const r = new Database(db, { readonly: true });
    const hashOf = (id: number) =>
      `${id}:${(r.prepare("SELECT hash FROM records WHERE id = ?").get(id) as { hash: string }).hash}`;
    const [five, ten] = [hashOf(5), hashOf(10)];
    r.close();
    const store = openLogStore(db);
    // Records 1..10 are older than a day at this "now".
    await store.prune({ olderThanMs: 86_400_000, now: 1_700_000_010_000 + 86_400_000 });
    await store.close();
    const v = await cli("shield", "verify-log", "--db", db, "--anchor", five, "--anchor", ten, "--json");
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ ok: true, fromId: 10, anchorsPruned: [5] });
    const text = await cli("shield", "verify-log", "--db", db, "--anchor", five, "--anchor", ten);
    expect(text.out).toContain("1 anchor(s) match, 1 name pruned records");
  });
});

describe("clawguard shield log --follow", () => {
  it("prints records as the shield commits them, as JSON lines, and stops cleanly on SIGINT", async () => {
    const db = await logWith(3);
    const store = openLogStore(db);
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(["node", "clawguard", ...process.argv.slice(1)]);`,
        "shield",
        "log",
        "--db",
        db,
        "--follow",
        "--json",
        "--agent",
        "agent-0",
      ],
      { stdio: ["ignore", "pipe", "pipe"], cwd: path.dirname(MAIN) },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const ids = () =>
      out
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { id: number }).id);
    await expect.poll(ids, { timeout: 15_000 }).toEqual([1]);
    for (let i = 3; i < 9; i++) store.append(record(i));
    await store.flush();
    await expect.poll(ids, { timeout: 5000 }).toEqual([1, 4, 7]);
    child.kill("SIGINT");
    expect(await exit).toBe(0);
    await store.close();
  }, 30_000);
});
