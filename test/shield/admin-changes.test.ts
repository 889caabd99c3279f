/**
 * Every change made through the admin API (and so through the CLI and the dashboard, which call
 * it) is a record in the hash-chained log naming the operator: `shield log --operator NAME`
 * finds them, a scoped operator's log shows the changes in their fleets only, a refused change
 * is not logged, and the chain still verifies.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";

const sha256 = (t: string) => createHash("sha256").update(t).digest("hex");
const ALICE = "alice-token-0123456789abcdef0123456789";
const UMA = "uma-token-0123456789abcdef0123456789abc";

let s: AdminShield;

beforeAll(async () => {
  s = await startAdminShield(`fleets:
  acme: {}
  umbrella: {}
agents:
  - { id: a1, fleet: acme, sources: [10.9.0.1] }
  - { id: u1, fleet: umbrella, sources: [10.9.0.2] }
operators:
  - { name: alice, role: operator, fleets: [acme], token_sha256: "${sha256(ALICE)}" }
  - { name: uma, role: viewer, fleets: [umbrella], token_sha256: "${sha256(UMA)}" }
`);
});

afterAll(async () => {
  await s?.close();
});

const db = () => path.join(s.dir, "shield.db");

async function logged(args: string[]): Promise<Array<Record<string, unknown>>> {
  await s.managed.log.flush();
  const r = await cli("shield", "log", "--db", db(), "--json", ...args);
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as { records: Array<Record<string, unknown>> }).records;
}

describe("changes in the log, by operator", () => {
  it("records mode switches, rule edits and operator edits with the name of who made them", async () => {
    const tokenFile = path.join(s.dir, "alice.token");
    writeFileSync(tokenFile, ALICE + "\n", { mode: 0o600 });
    const asAlice = (...a: string[]) => cli("shield", ...a, "--admin", s.admin, "--token-file", tokenFile);
    expect((await asAlice("mode", "lockdown", "--fleet", "acme")).code).toBe(0);
    expect((await asAlice("rules", "add", "allow", "api.example.com:443", "--agent", "a1")).code).toBe(0);
    expect((await asAlice("rules", "remove", "allow", "api.example.com:443", "--agent", "a1")).code).toBe(0);
    // Refused: out of scope (404) and above her role (403). Nothing changed, nothing logged.
    expect((await asAlice("mode", "audit", "--fleet", "umbrella")).code).not.toBe(0);
    expect((await s.api("POST", "/api/operators", { name: "x", role: "viewer" }, ALICE)).status).toBe(403);

    const added = await s.api("POST", "/api/operators", { name: "bob", role: "viewer", fleets: ["acme"] });
    expect(added.status).toBe(201);
    expect((await s.api("DELETE", "/api/operators", { name: "bob" })).status).toBe(200);
    expect((await s.api("PUT", "/api/mode", { scope: "fleet", id: "umbrella", mode: "audit" })).status).toBe(
      200,
    );

    const alice = await logged(["--operator", "alice"]);
    expect(alice.map((r) => [r.method, r.agent, r.fleet, r.rule])).toEqual([
      ["MODE", null, "acme", "operator:alice"],
      ["RULE+", "a1", "acme", "operator:alice"],
      ["RULE-", "a1", "acme", "operator:alice"],
    ]);
    expect(alice[0]!.reason).toBe("mode of fleet acme set to lockdown; 0 tunnel(s) closed");
    expect(alice[1]!.reason).toMatch(/^allow "api.example.com:443" added to agent a1/);

    const admin = await logged(["--operator", "admin"]);
    expect(admin.map((r) => [r.method, r.fleet, r.reason])).toEqual([
      ["OPERATOR+", null, "operator bob added: viewer of fleets acme"],
      ["OPERATOR-", null, "operator bob removed: they can no longer log in"],
      ["MODE", "umbrella", "mode of fleet umbrella set to audit; 0 tunnel(s) closed"],
    ]);
    expect(await logged(["--operator", "bob"])).toEqual([]);

    // The text form names the operator.
    const text = await cli("shield", "log", "--db", db(), "--operator", "alice");
    expect(text.out).toMatch(/operator alice {2}MODE {2}acme {2}mode of fleet acme set to lockdown/);

    // The chain holds the change records as it holds decisions.
    const v = await cli("shield", "verify-log", "--db", db(), "--json");
    expect(JSON.parse(v.out)).toMatchObject({ ok: true });
    expect(JSON.parse(v.out).count).toBeGreaterThanOrEqual(6);
  });

  it("shows a scoped operator the changes in their fleets only, through /api/log", async () => {
    await s.managed.log.flush();
    const uma = await s.api("GET", "/api/log?operator=admin", undefined, UMA);
    expect(uma.status).toBe(200);
    expect(uma.json.records.map((r: { method: string; fleet: string }) => [r.method, r.fleet])).toEqual([
      ["MODE", "umbrella"],
    ]);
    expect(uma.text).not.toContain("acme");
    expect(uma.text).not.toContain("bob");
    const byAlice = await s.api("GET", "/api/log?operator=alice", undefined, UMA);
    expect(byAlice.json.records).toEqual([]);
    const all = await s.api("GET", "/api/log?operator=alice");
    expect(all.json.records).toHaveLength(3);
  });
});
