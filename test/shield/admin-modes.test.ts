import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startManagedShield, type ManagedShield } from "../../src/shield/daemon.js";
import { loadShieldConfig } from "../../src/shield/config.js";
import { ADMIN_TOKEN, startAdminShield, type AdminShield } from "./admin-harness.js";
import { curl, sha256, TableResolver, Upstream, v4 } from "./proxy-harness.js";

const SCOUT = "scout-proxy-password";
const ROVER = "rover-proxy-password";
const resolver = new TableResolver({ "web.test": v4("127.0.0.3") });

const body = `mode: enforce
tiers:
  crew: { allow: [web.test, 127.0.0.3/32] }
fleets:
  acme: { isolation: isolated }
agents:
  - { id: scout, fleet: acme, tier: crew, token_sha256: "${sha256(SCOUT)}" }
  - { id: rover, tier: crew, token_sha256: "${sha256(ROVER)}" }
`;

let web: Upstream;
beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
});
afterAll(async () => {
  await web?.stop();
});

/** Stop the shield and start it again from the same files, as systemd's restart would. */
async function restart(
  s: AdminShield,
  managed: ManagedShield,
  warnings: string[] = [],
): Promise<ManagedShield> {
  await managed.close(100);
  return startManagedShield(await loadShieldConfig(s.file), {
    resolver: resolver.resolve,
    watch: false,
    warn: (m) => warnings.push(m),
  });
}

async function status(m: ManagedShield, agent: string, pass: string): Promise<number> {
  const proxy = `http://127.0.0.1:${m.shield.address.port}`;
  return (await curl(["-x", proxy, "--proxy-user", `${agent}:${pass}`, `http://web.test:${web.port}/`]))
    .status;
}

async function put(m: ManagedShield, b: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${m.admin!.port}/api/mode`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(b),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("mode switches made through the admin API survive a restart", () => {
  it("keeps a fleet's lockdown from the first request after a restart, and inherit lifts it for good", async () => {
    const s = await startAdminShield(body, { resolver: resolver.resolve, watch: false });
    let m = s.managed;
    try {
      expect(await status(m, "scout", SCOUT)).toBe(200);
      expect((await put(m, { scope: "fleet", id: "acme", mode: "lockdown" })).status).toBe(200);
      const file = path.join(s.dir, "shield-modes.json");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({
        schema: "clawguard.shield-modes/v1",
        global: null,
        fleets: { acme: "lockdown" },
        agents: {},
      });
      m = await restart(s, m);
      expect(m.control.modes().overrides.fleets).toEqual({ acme: "lockdown" });
      expect(await status(m, "scout", SCOUT)).toBe(403);
      expect(await status(m, "rover", ROVER)).toBe(200);
      expect((await put(m, { scope: "fleet", id: "acme", mode: null })).status).toBe(200);
      m = await restart(s, m);
      expect(await status(m, "scout", SCOUT)).toBe(200);
    } finally {
      await m.close(100);
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  it("drops, with a warning, a saved switch for an agent the config no longer has", async () => {
    const s = await startAdminShield(body, { resolver: resolver.resolve, watch: false });
    let m = s.managed;
    try {
      await put(m, { scope: "agent", id: "rover", mode: "lockdown" });
      await put(m, { scope: "agent", id: "scout", mode: "audit" });
      writeFileSync(s.file, readFileSync(s.file, "utf8").replace(/^ {2}- \{ id: rover.*\n/m, ""));
      const warnings: string[] = [];
      m = await restart(s, m, warnings);
      expect(warnings.join("\n")).toContain("agent rover");
      expect(m.control.modes().overrides.agents).toEqual({ scout: "audit" });
    } finally {
      await m.close(100);
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  it("refuses to start on a saved-switches file it cannot understand, naming it", async () => {
    const s = await startAdminShield(body, { resolver: resolver.resolve, watch: false });
    await s.managed.close(100);
    const file = path.join(s.dir, "shield-modes.json");
    try {
      for (const [text, why] of [
        ["{ lockdown", /not JSON/],
        [
          JSON.stringify({
            schema: "clawguard.shield-modes/v1",
            savedAt: "x",
            global: "off",
            fleets: {},
            agents: {},
          }),
          /global/,
        ],
      ] as const) {
        writeFileSync(file, text);
        const err = await startManagedShield(await loadShieldConfig(s.file), { watch: false }).catch(
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(Error);
        expect((err as Error).message).toContain(file);
        expect((err as Error).message).toMatch(why);
      }
    } finally {
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  it("applies a switch it cannot save, and says it will not survive a restart", async () => {
    const s = await startAdminShield(body, { resolver: resolver.resolve, watch: false });
    const blocked = path.join(s.dir, "shield-modes.json");
    // A directory where the file should go: the rename over it fails, whoever runs the test.
    mkdirSync(blocked);
    try {
      const r = await put(s.managed, { scope: "agent", id: "scout", mode: "lockdown" });
      expect(r.status).toBe(500);
      expect(r.json.error).toMatch(/in force, but could not be saved .*will not survive a restart/);
      expect(await status(s.managed, "scout", SCOUT)).toBe(403);
    } finally {
      await s.close();
    }
  });
});
