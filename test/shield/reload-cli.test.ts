import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";

let s: AdminShield;
beforeAll(async () => {
  // No file watch: only the command makes the shield read the file again.
  s = await startAdminShield("tiers:\n  crew: { allow: [web.test] }\n", { watch: false });
});
afterAll(() => s?.close());

const reload = (...more: string[]) =>
  cli("shield", "reload", "--admin", s.admin, "--token-file", path.join(s.dir, "admin.token"), ...more);
const tierRules = async () =>
  ((await s.api("GET", "/api/rules")).json.levels as Array<{ name: string | null; allow: string[] }>).find(
    (l) => l.name === "crew",
  )?.allow;

describe("clawguard shield reload", () => {
  it("makes the running shield apply the file as it is now", async () => {
    writeFileSync(s.file, readFileSync(s.file, "utf8").replace("[web.test]", "[web.test, api.test]"));
    expect(await tierRules()).toEqual(["web.test"]);
    const r = await reload();
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^reloaded: the running shield applies the file now; 0 open tunnel\(s\) closed$/m);
    expect(await tierRules()).toEqual(["web.test", "api.test"]);
  });

  it("refuses a file with errors, says why, and leaves the running policy", async () => {
    writeFileSync(s.file, readFileSync(s.file, "utf8").replace("[web.test, api.test]", "[web.test, 'a b']"));
    const r = await reload();
    expect(r.code).not.toBe(0);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/HTTP 422/);
    expect(r.err).toMatch(/a b/);
    expect(r.err).toMatch(/running policy stays in force/);
    expect(await tierRules()).toEqual(["web.test", "api.test"]);
    const json = await reload("--json");
    expect(json.code).not.toBe(0);
    const status = (await s.api("GET", "/api/status")).json;
    expect(status.lastReload).toMatchObject({ ok: false, trigger: "admin api by admin" });
  });
});
