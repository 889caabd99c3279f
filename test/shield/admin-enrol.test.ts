/**
 * Enrolling and revoking WireGuard agents through the admin API: an operator into their own
 * fleets only (another fleet is as absent as an unknown one, and nothing is written), a join
 * code made with the public key root's sync daemon published, and each change a membership
 * record in the hash-chained log naming the operator, which `shield log --operator` finds.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../src/shield/config.js";
import { STATUS_SCHEMA } from "../../src/shield/wireguard/status.js";
import { decodeJoinCode } from "../../src/shield/wireguard/join-code.js";
import { generateKeyPair, publicKeyOf } from "../../src/shield/wireguard/keys.js";
import { freePort, startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";
import { sha256 } from "./proxy-harness.js";

const ALICE = "alice-token-0123456789abcdef0123456789";
const VIC = "vic-token-0123456789abcdef01234567890";
const SHIELD_KEY = generateKeyPair().publicKey;

let s: AdminShield;
let port: number;

beforeAll(async () => {
  port = await freePort();
  s = await startAdminShield(
    `tiers:
  crew: { allow: ["*.test"] }
fleets:
  acme: {}
  umbrella: {}
wireguard:
  interface: cgtest0
  listen_port: 51820
  address: [127.0.0.1/24]
  private_key_file: wg.key
  status_file: wg-status.json
  endpoint: 203.0.113.5:51820
agents:
  - { id: u1, fleet: umbrella, tier: crew, token_sha256: "${sha256("u1-token")}" }
operators:
  - { name: alice, role: operator, fleets: [acme], token_sha256: "${sha256(ALICE)}" }
  - { name: vic, role: viewer, fleets: [acme], token_sha256: "${sha256(VIC)}" }
`,
    { listen: `127.0.0.1:${port}` },
  );
  publishStatus();
});

afterAll(async () => {
  await s?.close();
});

/** What root's sync daemon publishes: the interface's public key among the rest. */
function publishStatus(): void {
  writeFileSync(
    path.join(s.dir, "wg-status.json"),
    JSON.stringify({
      schema: STATUS_SCHEMA,
      interface: "cgtest0",
      publicKey: SHIELD_KEY,
      listenPort: 51820,
      at: Date.now(),
      peers: [],
    }),
  );
}

const agents = () => parseShieldConfig(readFileSync(s.file, "utf8"), s.file).agents;

async function logged(args: string[]): Promise<Array<Record<string, unknown>>> {
  await s.managed.log.flush();
  const r = await cli("shield", "log", "--db", path.join(s.dir, "shield.db"), "--json", ...args);
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as { records: Array<Record<string, unknown>> }).records;
}

describe("enrolment through the admin API", () => {
  it("enrols an operator's agent into their fleet, with a join code for exactly that", async () => {
    const r = await s.api("POST", "/api/agents/enroll", { id: "scout", fleet: "acme", tier: "crew" }, ALICE);
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ ok: true, agent: "scout", addresses: ["127.0.0.2/32"], rotated: false });
    const code = decodeJoinCode(r.json.join, Date.now() / 1000);
    expect(code).toMatchObject({
      agent: "scout",
      endpoint: { host: "203.0.113.5", port: 51820 },
      shieldPublicKey: SHIELD_KEY,
      addresses: ["127.0.0.2/32"],
      shieldAddresses: ["127.0.0.1/32"],
      proxy: { host: "127.0.0.1", port },
    });
    expect(publicKeyOf(code.privateKey!)).toBe(r.json.publicKey);
    // Valid for a day unless asked otherwise.
    expect(Math.abs(code.expires - (Date.now() / 1000 + 86_400))).toBeLessThan(60);
    const scout = agents().find((a) => a.id === "scout");
    expect(scout).toMatchObject({ fleet: "acme", tier: "crew", sources: ["127.0.0.2/32"] });
    expect(scout?.wireguard?.publicKey).toBe(r.json.publicKey);
    // Applied at once: the running shield knows the agent by its tunnel address.
    expect(s.managed.control.policy.identify("127.0.0.2")?.id).toBe("scout");
  });

  it("refuses another fleet as an unknown one, a missing fleet, and a viewer, writing nothing", async () => {
    const before = readFileSync(s.file, "utf8");
    const other = await s.api("POST", "/api/agents/enroll", { id: "x1", fleet: "umbrella" }, ALICE);
    const none = await s.api("POST", "/api/agents/enroll", { id: "x1", fleet: "nope" }, ALICE);
    expect([other.status, none.status]).toEqual([404, 404]);
    expect(other.json.error.replace("umbrella", "F")).toBe(none.json.error.replace("nope", "F"));
    const unscoped = await s.api("POST", "/api/agents/enroll", { id: "x1" }, ALICE);
    expect(unscoped.status).toBe(400);
    expect(unscoped.json).toMatchObject({ field: "fleet", error: expect.stringMatching(/fleets acme only/) });
    const viewer = await s.api("POST", "/api/agents/enroll", { id: "x1", fleet: "acme" }, VIC);
    expect(viewer.status).toBe(403);
    expect(viewer.json.error).toMatch(/vic is a viewer/);
    // The id of an agent they do not see is taken, and that is all they learn.
    const taken = await s.api("POST", "/api/agents/enroll", { id: "u1", fleet: "acme" }, ALICE);
    expect(taken.status).toBe(409);
    expect(taken.json.error).not.toMatch(/umbrella/);
    const psk = await s.api("POST", "/api/agents/enroll", { id: "x1", presharedKey: true });
    expect(psk.status).toBe(400);
    expect(psk.json).toMatchObject({
      field: "presharedKey",
      error: expect.stringMatching(/--preshared-key/),
    });
    const badKey = await s.api("POST", "/api/agents/enroll", { id: "x1", publicKey: "abc" });
    expect(badKey.status).toBe(400);
    expect(badKey.json).toMatchObject({
      field: "publicKey",
      error: expect.stringMatching(/not a WireGuard key/),
    });
    const expires = await s.api("POST", "/api/agents/enroll", { id: "x1", expires: "90d" });
    expect(expires.json).toMatchObject({ field: "expires" });
    expect(readFileSync(s.file, "utf8")).toBe(before);
  });

  it("refuses with the reason when the sync daemon has not published the shield's key", async () => {
    const before = readFileSync(s.file, "utf8");
    renameSync(path.join(s.dir, "wg-status.json"), path.join(s.dir, "wg-status.away"));
    try {
      const r = await s.api("POST", "/api/agents/enroll", { id: "x2" });
      expect(r.status).toBe(409);
      expect(r.json.error).toMatch(/WireGuard public key is not known.*wg-status\.json/);
    } finally {
      publishStatus();
    }
    expect(readFileSync(s.file, "utf8")).toBe(before);
  });

  it("rotates an enrolled agent's key to one made on the agent, and revokes only the operator's agents", async () => {
    const own = generateKeyPair();
    const r = await s.api("POST", "/api/agents/enroll", { id: "scout", publicKey: own.publicKey }, ALICE);
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ rotated: true, addresses: ["127.0.0.2/32"], publicKey: own.publicKey });
    expect(decodeJoinCode(r.json.join, Date.now() / 1000).privateKey).toBeUndefined();

    const before = readFileSync(s.file, "utf8");
    const other = await s.api("POST", "/api/agents/revoke", { id: "u1" }, ALICE);
    const ghost = await s.api("POST", "/api/agents/revoke", { id: "ghost" }, ALICE);
    expect([other.status, ghost.status]).toEqual([404, 404]);
    expect(other.json.error.replace("u1", "X")).toBe(ghost.json.error.replace("ghost", "X"));
    expect((await s.api("POST", "/api/agents/revoke", { id: "scout" }, VIC)).status).toBe(403);
    expect(readFileSync(s.file, "utf8")).toBe(before);

    const gone = await s.api("POST", "/api/agents/revoke", { id: "scout" }, ALICE);
    expect(gone.status, gone.text).toBe(200);
    expect(gone.json).toMatchObject({ ok: true, agent: "scout", addresses: ["127.0.0.2/32"] });
    expect(agents().map((a) => a.id)).toEqual(["u1"]);
    expect(s.managed.control.policy.identify("127.0.0.2")).toBeNull();
  });

  it("logs each as a membership record naming the operator, found by shield log --operator", async () => {
    const mine = await logged(["--operator", "alice"]);
    expect(mine.map((r) => [r.method, r.agent, r.fleet, r.rule])).toEqual([
      ["ENROL", "scout", "acme", "operator:alice"],
      ["REKEY", "scout", "acme", "operator:alice"],
      ["REVOKE", "scout", "acme", "operator:alice"],
    ]);
    expect(mine[0]!.reason).toMatch(/enrolled: agent joined .*shield\.yaml \(api enroll scout by alice\)/);
    expect(mine[2]!.reason).toMatch(/revoked: .*\(api revoke scout by alice\)/);
    expect(await logged(["--operator", "vic"])).toEqual([]);
    const text = await cli("shield", "log", "--db", path.join(s.dir, "shield.db"), "--operator", "alice");
    expect(text.out).toMatch(/operator alice {2}ENROL {2}scout {2}enrolled: /);
    expect(text.out).toMatch(/operator alice {2}REVOKE {2}scout {2}revoked: /);
    // Through the API too, for the operator's own eyes.
    const api = await s.api("GET", "/api/log?operator=alice", undefined, ALICE);
    expect(api.json.records.map((r: { method: string }) => r.method)).toEqual(["REVOKE", "REKEY", "ENROL"]);
    const v = await cli("shield", "verify-log", "--db", path.join(s.dir, "shield.db"), "--json");
    expect(JSON.parse(v.out)).toMatchObject({ ok: true });
  });
});
