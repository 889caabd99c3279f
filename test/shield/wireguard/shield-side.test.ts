import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeAll, afterAll, describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../../src/shield/config.js";
import { membershipRecords } from "../../../src/shield/membership.js";
import { revokeAgent } from "../../../src/shield/wireguard/enroll.js";
import { generateKeyPair } from "../../../src/shield/wireguard/keys.js";
import { openTunnel, startAdminShield, until, type AdminShield } from "../admin-harness.js";
import { sha256, TableResolver, Upstream, v4 } from "../proxy-harness.js";

const SCOUT = "scout-proxy-password";
const MATE = "mate-proxy-password";
const KEY = generateKeyPair().publicKey;
const resolver = new TableResolver({ "web.test": v4("127.0.0.3") });

let web: Upstream;
let s: AdminShield;

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
});
afterAll(async () => {
  await web?.stop();
});
afterEach(async () => {
  await s?.close();
}, 60_000);

describe("revocation in the running shield", () => {
  it("closes the agent's open tunnel at once, leaves the others', and logs the revocation in the chain", async () => {
    s = await startAdminShield(
      `agents:\n  - { id: scout, token_sha256: "${sha256(SCOUT)}", allow: ["web.test:${web.port}", 127.0.0.3/32] }\n  - { id: mate, token_sha256: "${sha256(MATE)}", allow: ["web.test:${web.port}", 127.0.0.3/32] }\n`,
      { resolver: resolver.resolve },
    );
    const scout = await openTunnel(s.proxyPort, `web.test:${web.port}`, "scout", SCOUT);
    const mate = await openTunnel(s.proxyPort, `web.test:${web.port}`, "mate", MATE);
    expect(scout.head).toMatch(/^HTTP\/1\.1 200/);
    const revoked = await revokeAgent({ configFile: s.file, id: "scout", live: false });
    expect(revoked).toMatchObject({ publicKey: null, shieldLogged: true });
    await scout.closed;
    expect(await mate.get("web.test")).toMatch(/^HTTP\/1\.1 200/);
    await s.managed.log.flush();
    const log = await s.api("GET", "/api/log?agent=scout&decision=denied");
    const rec = log.json.records.find((r: { method: string }) => r.method === "REVOKE");
    expect(rec).toMatchObject({ agent: "scout", decision: "denied", host: "", port: 0 });
    expect(rec.reason).toMatch(
      /^revoked: agent left .*shield.yaml \(file change; shield revoke by local user \S+\); 1 open tunnel\(s\) closed/,
    );
    expect(s.managed.log.verify()).toMatchObject({ ok: true });
    const agents = (await s.api("GET", "/api/agents")).json.agents;
    expect(agents.map((a: { id: string }) => a.id)).toEqual(["mate"]);
  });
});

describe("the tunnels in /api/agents and /metrics", () => {
  it("shows each WireGuard agent's handshake, endpoint and transfer from the status root publishes", async () => {
    const body = (status: string) =>
      `wireguard:\n  address: [10.77.0.1/16]\n  private_key_file: wireguard.key\n  status_file: ${status}\nagents:\n  - { id: scout, sources: [10.77.0.2/32], wireguard: { public_key: "${KEY}" } }\n  - { id: plain, token_sha256: "${sha256(SCOUT)}" }\n`;
    s = await startAdminShield(body("wg.json"));
    // Before root published anything: on WireGuard, not seen on the interface.
    let agents = (await s.api("GET", "/api/agents")).json.agents;
    expect(agents[0].wireguard).toMatchObject({ publicKey: KEY, onInterface: false, latestHandshake: null });
    expect(agents[1].wireguard).toBeNull();
    writeFileSync(
      path.join(s.dir, "wg.json"),
      JSON.stringify({
        schema: "clawguard.wireguard-status/v1",
        interface: "cg0",
        publicKey: "x",
        listenPort: 51820,
        at: Date.now(),
        peers: [
          {
            publicKey: KEY,
            endpoint: "198.51.100.2:40000",
            allowedIps: ["10.77.0.2/32"],
            latestHandshake: 1_800_000_000,
            rxBytes: 10,
            txBytes: 20,
          },
          {
            publicKey: generateKeyPair().publicKey,
            endpoint: null,
            allowedIps: [],
            latestHandshake: 0,
            rxBytes: 0,
            txBytes: 0,
          },
        ],
      }),
    );
    agents = await until(async () => {
      const a = (await s.api("GET", "/api/agents")).json.agents;
      return a[0].wireguard.onInterface ? a : undefined;
    }, "the status to be read");
    expect(agents[0].wireguard).toEqual({
      publicKey: KEY,
      addresses: ["10.77.0.2/32"],
      onInterface: true,
      endpoint: "198.51.100.2:40000",
      latestHandshake: 1_800_000_000_000,
      rxBytes: 10,
      txBytes: 20,
    });
    const metrics = (await s.api("GET", "/metrics")).text;
    expect(metrics).toMatch(
      /^clawguard_shield_wireguard_latest_handshake_seconds\{agent="scout"\} 1800000000$/m,
    );
    expect(metrics).toMatch(/^clawguard_shield_wireguard_peers 2$/m);
    expect(metrics).not.toMatch(/latest_handshake_seconds\{agent="plain"\}/);
  });
});

describe("membership records", () => {
  const cfg = (agents: string) =>
    parseShieldConfig(
      `listen: 10.77.0.1:3128\nlog: { path: s.db }\nwireguard: { address: [10.77.0.1/16], private_key_file: k }\nfleets: { f: {} }\nagents:\n${agents}`,
      "/etc/clawguard/shield.yaml",
    );
  const wg = (id: string, ip: string, key: string) =>
    `  - { id: ${id}, fleet: f, sources: [${ip}/32], wireguard: { public_key: "${key}" } }\n`;
  const k1 = generateKeyPair().publicKey;
  const k2 = generateKeyPair().publicKey;

  it("records who joined, who left with how many tunnels, and who got a new key; nothing when nobody changed", () => {
    const before = cfg(wg("a", "10.77.0.2", k1) + wg("b", "10.77.0.3", k2));
    const after = cfg(wg("a", "10.77.0.2", k2.replace(/^./, "Z")) + wg("c", "10.77.0.4", k1));
    const r = membershipRecords(before, after, {
      at: 7,
      trigger: "file change",
      openTunnels: (id) => (id === "b" ? 3 : 0),
    });
    expect(r.map((x) => [x.method, x.agent, x.decision, x.fleet, x.sourceAddress])).toEqual([
      ["REVOKE", "b", "denied", "f", "10.77.0.3"],
      ["REKEY", "a", "allowed", "f", "10.77.0.2"],
      ["ENROL", "c", "allowed", "f", "10.77.0.4"],
    ]);
    expect(r[0]!.reason).toBe(
      `revoked: agent left /etc/clawguard/shield.yaml (file change); 3 open tunnel(s) closed; WireGuard key ${k2} no longer admitted`,
    );
    expect(membershipRecords(before, before, { at: 7, trigger: "x", openTunnels: () => 0 })).toEqual([]);
  });
});
