/**
 * A shield alone (no store:) keeps its budget counts across a restart in the state file beside
 * its log, and its mode switches in the modes file, as shields sharing PostgreSQL keep both there.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadShieldConfig } from "../../src/shield/config.js";
import { startManagedShield, type ManagedShield } from "../../src/shield/daemon.js";
import { ADMIN_TOKEN, startAdminShield } from "./admin-harness.js";
import { curl, sha256, Upstream } from "./proxy-harness.js";

const SCOUT = "scout-proxy-password";
const ROVER = "rover-proxy-password";
const body = `agents:
  - id: scout
    token_sha256: "${sha256(SCOUT)}"
    allow: [127.0.0.3/32]
    budget: { requests: 5, window: 1h }
  - { id: rover, token_sha256: "${sha256(ROVER)}", allow: [127.0.0.3/32] }
`;

let web: Upstream;
beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
});
afterAll(async () => {
  await web?.stop();
});

async function status(m: ManagedShield, agent: string, pass: string): Promise<number> {
  const proxy = `http://127.0.0.1:${m.shield.address.port}`;
  return (await curl(["-x", proxy, "--proxy-user", `${agent}:${pass}`, `http://127.0.0.3:${web.port}/`]))
    .status;
}

describe("a shield alone, restarted", () => {
  it("keeps the budget counts and the mode switches it had", async () => {
    const s = await startAdminShield(body, { watch: false });
    let m = s.managed;
    try {
      for (let i = 0; i < 3; i++) expect(await status(m, "scout", SCOUT)).toBe(200);
      const put = await fetch(`${s.admin}/api/mode`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ scope: "agent", id: "rover", mode: "lockdown" }),
      });
      expect(put.status).toBe(200);
      await m.close(100);
      expect(existsSync(path.join(s.dir, "shield-state.db"))).toBe(true);
      m = await startManagedShield(await loadShieldConfig(s.file), { watch: false, warn: () => undefined });
      expect(await status(m, "rover", ROVER)).toBe(403);
      // Five of five: three before the restart, two after.
      expect(await status(m, "scout", SCOUT)).toBe(200);
      expect(await status(m, "scout", SCOUT)).toBe(200);
      expect(await status(m, "scout", SCOUT)).toBe(403);
      const agents = (await (
        await fetch(`http://127.0.0.1:${m.admin!.port}/api/agents`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        })
      ).json()) as { agents: Array<{ id: string; budgetUse: { used: number } }> };
      expect(agents.agents.find((a) => a.id === "scout")?.budgetUse.used).toBe(5);
    } finally {
      await m.close(100);
      await s.close().catch(() => undefined);
    }
  });
});
