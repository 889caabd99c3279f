import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { defaultStatePath, RunStore } from "../../src/fleet/store.js";
import { target } from "./fake-hosts.js";

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the store of fleet runs", () => {
  it("keeps runs and each host's row, newest run first, for this user only", () => {
    const file = path.join(dir, "state", "fleet.db");
    const s = RunStore.open(file);
    const a = s.beginRun("audit", "/inv", { limit: "web" });
    s.saveHost(a.id, 1, {
      host: "w2",
      target: target("w2"),
      status: "unreachable",
      error: { code: "CG_SSH_UNREACHABLE", message: "x" },
      startedAt: "t",
      durationMs: 3,
    });
    s.saveHost(a.id, 0, {
      host: "w1",
      target: target("w1"),
      status: "ok",
      result: { report: { n: 1 } },
      startedAt: "t",
      durationMs: 5.4,
    });
    s.finishRun(a.id, { hosts: 2 });
    const b = s.beginRun("harden", "/inv", {});
    s.close();

    const again = RunStore.open(file);
    expect(again.runs().map((r) => r.id)).toEqual([b.id, a.id]);
    expect(again.runs(["audit"]).map((r) => r.id)).toEqual([a.id]);
    expect(again.run(a.id)).toMatchObject({
      kind: "audit",
      inventory: "/inv",
      params: { limit: "web" },
      summary: { hosts: 2 },
    });
    expect(again.run(b.id).finishedAt).toBeUndefined();
    expect(again.hosts(a.id).map((h) => [h.host, h.status, h.result, h.durationMs])).toEqual([
      ["w1", "ok", { report: { n: 1 } }, 5],
      ["w2", "unreachable", undefined, 3],
    ]);
    again.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
  });

  it("finds a run by a unique prefix of its id, and says when there is none or several", () => {
    const s = RunStore.open(path.join(dir, "prefix.db"));
    const a = s.beginRun("audit", undefined, {});
    expect(s.run(a.id.slice(0, 20)).id).toBe(a.id);
    expect(() => s.run("1999")).toThrow(/no fleet run "1999"/);
    s.beginRun("audit", undefined, {});
    expect(() => s.run("2")).toThrow(/names 2 fleet runs/);
    s.close();
  });

  it("refuses a database that is something else", () => {
    const other = path.join(dir, "other.db");
    const db = new Database(other);
    db.exec("CREATE TABLE shield_log (x)");
    db.close();
    expect(() => RunStore.open(other)).toThrow(
      expect.objectContaining({ code: "CG_STATE_UNUSABLE", where: other }),
    );
  });

  it("lives under XDG_STATE_HOME by default", () => {
    expect(defaultStatePath({ XDG_STATE_HOME: "/x/state" })).toBe("/x/state/clawguard/fleet.db");
    expect(defaultStatePath({})).toMatch(/\/\.local\/state\/clawguard\/fleet\.db$/);
  });
});
