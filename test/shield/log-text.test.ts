import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";
import { curl, sha256, TableResolver, Upstream, v4 } from "./proxy-harness.js";

const SCOUT = "scout-proxy-password";
const ROVER = "rover-proxy-password";

let web: Upstream;
let closedPort: number;
let s: AdminShield;

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  // A port nobody listens on: taken, then given back.
  closedPort = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.3", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
  const resolver = new TableResolver({ "web.test": v4("127.0.0.3"), "closed.test": v4("127.0.0.3") });
  s = await startAdminShield(
    `deny: [bad.test]
tiers:
  crew: { allow: [web.test, closed.test, gone.test, bad.test, 127.0.0.3/32], budget: { upload: 10MB, window: 1h } }
agents:
  - { id: scout, tier: crew, token_sha256: "${sha256(SCOUT)}" }
  - { id: rover, tier: crew, token_sha256: "${sha256(ROVER)}" }
`,
    { resolver: resolver.resolve, watch: false },
  );
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

const as = (agent: string, pass: string, url: string, ...more: string[]) =>
  curl(["-x", s.proxyUrl, "--proxy-user", `${agent}:${pass}`, ...more, url]);

/** `shield log` as text, one array of columns per line (columns are two spaces apart). */
async function logLines(...args: string[]): Promise<string[][]> {
  await s.managed.log.flush();
  const r = await cli("shield", "log", "--db", path.join(s.dir, "shield.db"), ...args);
  expect(r.code, r.err).toBe(0);
  return r.out
    .trimEnd()
    .split("\n")
    .map((l) => l.split(/ {2,}/).slice(1));
}

describe("shield log as text says what decided each request, and why one failed", () => {
  it("names the rule, default, lockdown and unknown agent as the cause, with the reason of every refusal", async () => {
    const web1 = `http://web.test:${web.port}/a`;
    expect((await as("scout", SCOUT, web1)).status).toBe(200);
    expect((await as("scout", SCOUT, `http://other.test:${web.port}/b`)).status).toBe(403);
    expect((await as("scout", SCOUT, `http://bad.test:${web.port}/c`)).status).toBe(403);
    expect((await as("scout", "not-the-password", `http://wanted.test:${web.port}/d`)).status).toBe(407);
    expect((await s.api("PUT", "/api/mode", { scope: "agent", id: "rover", mode: "lockdown" })).status).toBe(
      200,
    );
    expect((await as("rover", ROVER, web1)).status).toBe(403);

    // The mode switch is a record too: an operator's change, named with who made it.
    const lines = await logLines("--limit", "6");
    const port = web.port;
    expect(lines).toEqual([
      [
        "scout",
        "allowed",
        "GET",
        `web.test:${port}/a`,
        "tier:crew allow web.test",
        expect.stringMatching(/^\d+↑ \d+↓$/),
      ],
      [
        "scout",
        "denied",
        "GET",
        `other.test:${port}/b`,
        "default",
        "0↑ 0↓",
        "no rule allows this destination",
      ],
      [
        "scout",
        "denied",
        "GET",
        `bad.test:${port}/c`,
        "global deny bad.test",
        "0↑ 0↓",
        "matched global deny bad.test",
      ],
      [
        "(unknown)",
        "denied",
        "GET",
        `wanted.test:${port}/d`,
        "unknown agent",
        "0↑ 0↓",
        "refused: no known agent for these credentials and source address",
      ],
      ["operator admin", "MODE", "rover", "mode of agent rover set to lockdown; 0 tunnel(s) closed"],
      ["rover", "denied", "GET", `web.test:${port}/a`, "lockdown", "0↑ 0↓", "lockdown mode"],
    ]);
  });

  it("says why an allowed request failed: the name did not resolve, or nothing answered", async () => {
    expect((await as("scout", SCOUT, `http://gone.test:${web.port}/`)).status).toBe(502);
    expect((await as("scout", SCOUT, `http://closed.test:${closedPort}/`)).status).toBe(502);
    expect((await as("scout", SCOUT, `closed.test:${closedPort}`, "-p")).status).not.toBe(200);
    const lines = await logLines("--agent", "scout", "--limit", "3");
    expect(lines.map((l) => l.slice(1, 5))).toEqual([
      ["allowed", "GET", `gone.test:${web.port}/`, "tier:crew allow gone.test"],
      ["allowed", "GET", `closed.test:${closedPort}/`, "tier:crew allow closed.test"],
      ["allowed", "CONNECT", `closed.test:${closedPort}`, "tier:crew allow closed.test"],
    ]);
    expect(lines[0]![6]).toMatch(/^resolve gone\.test: ENOTFOUND/);
    expect(lines[1]![6]).toMatch(/ECONNREFUSED/);
    expect(lines[2]![6]).toMatch(/ECONNREFUSED/);
  });

  it("counts the same upload bytes in shield agents, the log and the budget", async () => {
    const body = "x".repeat(5000);
    expect((await as("rover", ROVER, `http://web.test:${web.port}/`)).status).toBe(403);
    expect((await s.api("PUT", "/api/mode", { scope: "agent", id: "rover", mode: null })).status).toBe(200);
    for (let i = 0; i < 3; i++)
      expect((await as("rover", ROVER, `http://web.test:${web.port}/up`, "--data-binary", body)).status).toBe(
        200,
      );
    await s.managed.log.flush();
    const r = await cli("shield", "log", "--db", path.join(s.dir, "shield.db"), "--agent", "rover", "--json");
    const records = (JSON.parse(r.out) as { records: Array<{ bytesUp: number }> }).records;
    const inLog = records.reduce((n, x) => n + x.bytesUp, 0);
    expect(inLog).toBeGreaterThanOrEqual(3 * 5000);
    const rover = ((await s.api("GET", "/api/agents")).json.agents as Array<Record<string, unknown>>).find(
      (a) => a.id === "rover",
    )!;
    expect(rover.bytesUp).toBe(inLog);
    const budgets = rover.budgets as Array<{ upload: { used: number } | null }>;
    expect(budgets.map((b) => b.upload?.used)).toEqual([inLog]);
  });
});
