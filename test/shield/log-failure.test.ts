import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { openLogStore, registerLogMetrics } from "../../src/shield/log/index.js";
import { record, tempDb } from "./log-helpers.js";

describe("shield log when the database refuses writes", () => {
  it("keeps records queued while another process holds the write lock, and commits them once it is released", async () => {
    const path = tempDb();
    const warnings: string[] = [];
    const store = openLogStore(path, { intervalMs: 10, onWarning: (m) => warnings.push(m) });
    store.append(record(0));
    await store.flush();
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    for (let i = 1; i <= 1000; i++) expect(() => store.append(record(i))).not.toThrow();
    await expect.poll(() => store.stats().commitFailures, { timeout: 5000 }).toBeGreaterThan(1);
    expect(store.stats()).toMatchObject({ committed: 1, queued: 1000, dropped: 0 });
    expect(store.stats().lastError).toMatch(/locked|busy/i);
    await expect(store.flush()).rejects.toThrow(/1000 record\(s\) to .*shield\.db.*stay queued/);
    expect(warnings.join("\n")).toMatch(/cannot write to .*shield\.db .*1000 record\(s\) kept in memory/);

    other.exec("COMMIT");
    other.close();
    await expect.poll(() => store.stats().queued, { timeout: 5000 }).toBe(0);
    expect(warnings.at(-1)).toMatch(/writing to .* again/);
    expect(store.verify()).toMatchObject({ ok: true, count: 1001, fromId: 0, headId: 1001 });
    expect(store.query({ afterId: 999 }).map((r) => r.reason)).toEqual(["request 999", "request 1000"]);
    await store.close();
  });

  it("drops only what exceeds the bounded queue, counts it, and says so", async () => {
    const path = tempDb();
    const warnings: string[] = [];
    const store = openLogStore(path, { maxQueue: 100, intervalMs: 10, onWarning: (m) => warnings.push(m) });
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < 150; i++) store.append(record(i));
    expect(store.stats()).toMatchObject({ appended: 100, queued: 100, dropped: 50 });
    expect(warnings.join("\n")).toMatch(/dropped 1 record\(s\) so far: 100 records are waiting/);
    other.exec("COMMIT");
    other.close();
    await store.flush();
    expect(store.verify()).toMatchObject({ ok: true, count: 100 });
    await store.close();
  });

  it("survives a full database: the failed batch stays queued, and is written once retention frees space", async () => {
    const path = tempDb();
    const warnings: string[] = [];
    const store = openLogStore(path, {
      hardLimitBytes: 256 * 1024,
      intervalMs: 10,
      onWarning: (m) => warnings.push(m),
    });
    const big = (i: number) => record(i, { ts: 1000 + i, path: "/" + "x".repeat(3000) });
    let i = 0;
    let full: unknown = null;
    while (full === null && i < 1000) {
      for (let k = 0; k < 10; k++) store.append(big(i++));
      await store.flush().catch((err: unknown) => (full = err));
    }
    expect(String(full)).toMatch(/database or disk is full/);
    const stuck = store.stats();
    expect(stuck.queued).toBeGreaterThan(0);
    expect(stuck.dropped).toBe(0);
    expect(warnings.join("\n")).toMatch(/database or disk is full.*kept in memory and retried/);
    for (let k = 0; k < 5; k++) expect(() => store.append(big(i++))).not.toThrow();

    const pruned = await store.prune({ olderThanMs: 0, now: 1000 + Math.floor(i / 2) });
    expect(pruned.deleted).toBeGreaterThan(0);
    await expect.poll(() => store.stats().queued, { timeout: 5000 }).toBe(0);
    const v = store.verify();
    expect(v).toMatchObject({ ok: true, fromId: pruned.checkpointId, headId: i });
    expect(store.query({ order: "desc", limit: 1 })[0]!.ts).toBe(1000 + i - 1);
    await store.close();
  });
});

describe("shield log metrics", () => {
  it("reports queued, dropped and failed batches on a Prometheus registry at scrape time", async () => {
    const path = tempDb();
    const store = openLogStore(path, { maxQueue: 10, intervalMs: 10, onWarning: () => undefined });
    const registry = new Registry();
    registerLogMetrics(registry, () => store.stats());
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < 12; i++) store.append(record(i));
    await expect.poll(() => store.stats().commitFailures, { timeout: 5000 }).toBeGreaterThan(0);
    const text = await registry.metrics();
    expect(text).toMatch(/^clawguard_shield_log_queued 10$/m);
    expect(text).toMatch(/^clawguard_shield_log_dropped_total 2$/m);
    expect(text).toMatch(/^clawguard_shield_log_commit_failures_total [1-9]\d*$/m);
    other.exec("COMMIT");
    other.close();
    await store.close();
    expect(await registry.metrics()).toMatch(/^clawguard_shield_log_committed_total 10$/m);
  });
});
