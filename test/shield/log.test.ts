import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openLogReader, openLogStore, type LogStore } from "../../src/shield/log/index.js";
import { record, tempDb } from "./log-helpers.js";

async function filled(n: number, path = tempDb()): Promise<{ path: string; store: LogStore }> {
  const store = openLogStore(path);
  for (let i = 0; i < n; i++) store.append(record(i));
  await store.flush();
  return { path, store };
}

/** Tamper the way an intruder would: a second connection that bypasses the writer. */
function tamper(path: string, sql: string, ...args: unknown[]): void {
  const db = new Database(path);
  db.prepare(sql).run(...args);
  db.close();
}

describe("shield log store", () => {
  it("chains thousands of appends and verifies them, from the writer and from a read-only reader", async () => {
    const { path, store } = await filled(5000);
    expect(store.verify()).toMatchObject({ ok: true, count: 5000, fromId: 0, headId: 5000 });
    expect(store.stats()).toMatchObject({ appended: 5000, committed: 5000, queued: 0, dropped: 0 });
    await store.close();
    const reader = openLogReader(path);
    expect(reader.verify()).toMatchObject({ ok: true, count: 5000 });
    await reader.close();
  });

  it("stores every field as given, and chains records across reopenings", async () => {
    const path = tempDb();
    let store = openLogStore(path);
    store.append(record(0, { reason: "emoji \u{1F600} and a lone \uD800 surrogate", durationMs: 12.6 }));
    await store.close();
    store = openLogStore(path);
    store.append(record(1));
    await store.flush();
    const [a, b] = store.query({});
    expect(a).toMatchObject({
      ...record(0),
      id: 1,
      reason: "emoji \u{1F600} and a lone \uFFFD surrogate",
      durationMs: 13,
    });
    expect(b).toMatchObject({ ...record(1), id: 2, prevHash: a!.hash });
    expect(store.verify()).toMatchObject({ ok: true, count: 2 });
    await store.close();
  });

  it("never stores a credential quoted in a reason", async () => {
    const { store } = await filled(0);
    store.append(record(0, { reason: "bad proxy credentials Basic c2NvdXQ6aHVudGVyMg== from 10.0.0.9" }));
    store.append(record(1, { reason: "Proxy-Authorization: Bearer sk-live-123456" }));
    await store.flush();
    const reasons = store.query({}).map((r) => r.reason);
    expect(reasons.join("\n")).not.toMatch(/c2NvdXQ6aHVudGVyMg|sk-live-123456/);
    expect(reasons[0]).toBe("bad proxy credentials Basic [redacted] from 10.0.0.9");
    await store.close();
  });

  it("queries by agent, decision, exact host, *.suffix host, time range, afterId, limit and order", async () => {
    const { store } = await filled(120);
    expect(store.query({ agent: "agent-1" }).every((r) => r.agent === "agent-1")).toBe(true);
    expect(store.query({ agent: "agent-1" })).toHaveLength(40);
    expect(store.query({ decision: "denied" }).map((r) => r.id)).toEqual(
      Array.from({ length: 40 }, (_, k) => 3 * k + 2),
    );
    expect(store.query({ host: "PASTEBIN.COM." })).toHaveLength(60);
    const anthropic = store.query({ host: "*.anthropic.com" });
    expect(anthropic).toHaveLength(30);
    expect(anthropic.every((r) => r.host === "x.api.anthropic.com")).toBe(true);
    // A suffix matches whole labels only: "*.openai.com" is not "*.i.com" and not the bare name.
    expect(store.query({ host: "*.i.com" })).toHaveLength(0);
    expect(store.query({ host: "*.api.openai.com" })).toHaveLength(0);
    const t0 = record(10).ts;
    expect(store.query({ since: t0, until: t0 + 4000 }).map((r) => r.id)).toEqual([11, 12, 13, 14, 15]);
    expect(store.query({ afterId: 115 }).map((r) => r.id)).toEqual([116, 117, 118, 119, 120]);
    expect(store.query({ limit: 3, order: "desc" }).map((r) => r.id)).toEqual([120, 119, 118]);
    expect(
      store.query({ agent: "agent-0", decision: "allowed", host: "api.openai.com" }).map((r) => r.id),
    ).toEqual(Array.from({ length: 10 }, (_, k) => 12 * k + 1));
    await store.close();
  });

  it("follows new records as they are committed", async () => {
    const { store } = await filled(3);
    const seen: number[] = [];
    const stop = new AbortController();
    const following = store.follow({ decision: "allowed" }, (rs) => seen.push(...rs.map((r) => r.id)), {
      intervalMs: 10,
      signal: stop.signal,
    });
    for (let i = 3; i < 9; i++) store.append(record(i));
    await store.flush();
    await expect.poll(() => seen, { timeout: 2000 }).toEqual([4, 7]);
    stop.abort();
    await following;
    await store.close();
  });
});

describe("tamper evidence", () => {
  it("names a record whose field was edited", async () => {
    const { path, store } = await filled(2000);
    await store.close();
    expect(record(1234).decision).toBe("denied");
    tamper(path, "UPDATE records SET decision = 'allowed' WHERE id = 1235");
    const v = openLogReader(path).verify();
    expect(v).toMatchObject({ ok: false, firstBadId: 1235, count: 1234 });
    expect(v.ok || v.reason).toMatch(/contents do not match its hash/);
  });

  it("names a deleted record in the middle and at the end", async () => {
    const { path, store } = await filled(2000);
    await store.close();
    tamper(path, "DELETE FROM records WHERE id = 777");
    expect(openLogReader(path).verify()).toMatchObject({
      ok: false,
      firstBadId: 777,
      reason: expect.stringMatching(/record 777 is missing/),
    });
  });

  it("names the last record when the tail was cut off", async () => {
    const { path, store } = await filled(500);
    await store.close();
    tamper(path, "DELETE FROM records WHERE id >= 499");
    expect(openLogReader(path).verify()).toMatchObject({
      ok: false,
      firstBadId: 499,
      reason: expect.stringMatching(/records 499\.\.500 are missing/),
    });
  });

  it("names a record whose hash was replaced, even by a recomputed-looking value", async () => {
    const { path, store } = await filled(300);
    await store.close();
    tamper(path, "UPDATE records SET hash = ? WHERE id = 42", "f".repeat(64));
    expect(openLogReader(path).verify()).toMatchObject({ ok: false, firstBadId: 42 });
  });

  it("names the first of two records whose contents were swapped", async () => {
    const { path, store } = await filled(300);
    await store.close();
    const db = new Database(path);
    const cols =
      "ts, agent, fleet, tier, source_address, method, host, host_rev, port, path, decision, rule, reason, upstream_address, bytes_up, bytes_down, duration_ms, prev_hash, hash";
    db.exec(`CREATE TEMP TABLE t AS SELECT id, ${cols} FROM records WHERE id IN (100, 101)`);
    db.exec(
      `UPDATE records SET (${cols}) = (SELECT ${cols} FROM t WHERE t.id = 201 - records.id) WHERE id IN (100, 101)`,
    );
    db.close();
    expect(openLogReader(path).verify()).toMatchObject({ ok: false, firstBadId: 100 });
  });
});

describe("retention", () => {
  it("prunes by age as a prefix, keeps the chain verifiable, and keeps chaining after it", async () => {
    const { store } = await filled(1000);
    const now = record(0).ts + 600_000; // records 0..599 (ids 1..600) are older than 0 ms before "now"
    const r = await store.prune({ olderThanMs: 0, now });
    expect(r).toMatchObject({ deleted: 600, checkpointId: 600 });
    expect(store.query({ limit: 1 })[0]!.id).toBe(601);
    expect(store.verify()).toMatchObject({ ok: true, count: 400, fromId: 600, headId: 1000 });
    for (let i = 1000; i < 1100; i++) store.append(record(i));
    await store.flush();
    expect(store.verify()).toMatchObject({ ok: true, count: 500, fromId: 600, headId: 1100 });
    await store.close();
  });

  it("never removes a record younger than the cut-off, even when it sits behind an older one", async () => {
    const { store } = await filled(0);
    store.append(record(0, { ts: 5000 }));
    store.append(record(1, { ts: 9000 })); // young
    store.append(record(2, { ts: 1000 })); // old, but after a young one in the chain
    await store.flush();
    await store.prune({ olderThanMs: 4000, now: 10_000 });
    expect(store.query({}).map((r) => r.id)).toEqual([2, 3]);
    expect(store.verify()).toMatchObject({ ok: true, fromId: 1 });
    await store.close();
  });

  it("prunes everything when every record is old, and the next record chains from the checkpoint", async () => {
    const { store } = await filled(50);
    await store.prune({ olderThanMs: 1, now: Date.now() });
    expect(store.query({})).toHaveLength(0);
    expect(store.verify()).toMatchObject({ ok: true, count: 0, fromId: 50, headId: 50 });
    store.append(record(50));
    await store.flush();
    expect(store.query({})[0]!.id).toBe(51);
    expect(store.verify()).toMatchObject({ ok: true, count: 1, fromId: 50, headId: 51 });
    await store.close();
  });

  it("shrinks the database file under a byte limit, oldest records first, and stays verifiable", async () => {
    const { path, store } = await filled(20_000);
    await store.flush();
    const { statSync } = await import("node:fs");
    const before = statSync(path).size + statSync(path + "-wal").size;
    const limit = 1024 * 1024;
    expect(before).toBeGreaterThan(2 * limit);
    const r = await store.prune({ maxBytes: limit });
    expect(statSync(path).size).toBeLessThanOrEqual(limit);
    expect(r.bytes).toBeLessThanOrEqual(limit);
    expect(r.deleted).toBeGreaterThan(10_000);
    const v = store.verify();
    expect(v).toMatchObject({ ok: true, fromId: r.checkpointId, headId: 20_000 });
    expect(v.ok && v.count).toBe(20_000 - r.deleted);
    expect(store.query({ order: "desc", limit: 1 })[0]!.id).toBe(20_000);
    await store.close();
  });

  it("applies the configured retention by itself soon after opening", async () => {
    const { path, store } = await filled(100);
    await store.close();
    const reopened = openLogStore(path, { retention: { olderThanMs: 60_000 } });
    await expect
      .poll(() => reopened.verify(), { timeout: 5000 })
      .toMatchObject({
        ok: true,
        count: 0,
        fromId: 100,
        headId: 100,
      });
    await reopened.close();
  });

  it("refuses to prune across a deleted record instead of hiding the gap", async () => {
    const { path, store } = await filled(100);
    tamper(path, "DELETE FROM records WHERE id = 40");
    await expect(store.prune({ olderThanMs: 0, now: record(60).ts })).rejects.toThrow(/record 40 is missing/);
    expect(store.verify()).toMatchObject({ ok: false, firstBadId: 40 });
    await store.close();
  });
});
