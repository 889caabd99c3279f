import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, until, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";
import { curl, sha256, TableResolver, Upstream, v4 } from "./proxy-harness.js";

const SCOUT = "scout-proxy-password";
const resolver = new TableResolver({ "web.test": v4("127.0.0.3") });

const body = `tiers:
  crew:
    allow: [web.test, 127.0.0.3/32]
    budget: { upload: 1MB, window: 10m }
agents:
  - id: scout
    tier: crew
    token_sha256: "${sha256(SCOUT)}"
    budget: { requests: 2 }
  - { id: free, sources: [127.0.0.21/32], allow: [127.0.0.3/32] }
`;

let web: Upstream;
let s: AdminShield;

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  s = await startAdminShield(body, { resolver: resolver.resolve });
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

const asScout = () =>
  curl(["-x", s.proxyUrl, "--proxy-user", `scout:${SCOUT}`, `http://web.test:${web.port}/`]);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's JSON
const agent = async (id: string): Promise<any> =>
  (await s.api("GET", "/api/agents")).json.agents.find((a: { id: string }) => a.id === id);

describe("budgets through the admin API", () => {
  it("shows each agent's budgets and the one nearest to running out, in the API and in `shield agents`", async () => {
    expect(await agent("free")).toMatchObject({ budgets: [], budgetUse: null });
    expect((await asScout()).status).toBe(200);
    expect((await asScout()).status).toBe(200);
    expect((await asScout()).status).toBe(403);
    const scout = await agent("scout");
    expect(scout.budgets).toEqual([
      {
        scope: "tier:crew",
        shared: false,
        windowMs: 600_000,
        text: "upload 1MB per 10m",
        upload: { used: expect.any(Number), limit: 1_000_000 },
        requests: null,
      },
      {
        scope: "agent:scout",
        shared: false,
        windowMs: 3_600_000,
        text: "2 requests per 1h",
        upload: null,
        requests: { used: 2, limit: 2 },
      },
    ]);
    // Two request heads went up; the refused third was not counted.
    expect(scout.budgets[0].upload.used).toBeGreaterThan(100);
    expect(scout.budgets[0].upload.used).toBeLessThan(1000);
    expect(scout.budgetUse).toEqual({
      scope: "agent:scout",
      kind: "requests",
      used: 2,
      limit: 2,
      fraction: 1,
    });

    const metric = 'clawguard_shield_budget_overruns_total{scope="agent:scout",action="refused"} 1';
    await until(
      async () => ((await s.api("GET", "/metrics")).text.includes(metric) ? true : undefined),
      metric,
    );

    const tokenFile = path.join(s.dir, "admin.token");
    const r = await cli("shield", "agents", "--admin", s.admin, "--token-file", tokenFile);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/BUDGET/);
    expect(r.out).toMatch(/^scout .* requests spent agent:scout$/m);
    expect(r.out).toMatch(/^free .* -$/m);

    // Asked live, the rules still allow web.test, and the answer is the proxy's: the spent
    // budget refuses it now, by the budget's rule.
    const live = (...args: string[]) =>
      cli("shield", "check", "--live", "--admin", s.admin, "--token-file", tokenFile, ...args);
    const one = await live("--agent", "scout", "web.test");
    expect(one.code).toBe(1);
    expect(one.out).toMatch(
      /^budgets: upload 1MB per 10m \(tier:crew\); 2 requests per 1h \(agent:scout\)$/m,
    );
    expect(one.out).toMatch(/^budget spent: requests \(agent:scout\); the shield refuses this agent/m);
    expect(one.out).toMatch(/^denied +CONNECT web\.test:443 +agent:scout budget/m);
    const json = JSON.parse((await live("--agent", "scout", "--json", "web.test")).out);
    expect(json.budget).toEqual({ scope: "agent:scout", kind: "requests", used: 2, limit: 2, fraction: 1 });
    const all = await live("--all-agents", "web.test");
    expect(all.out).toMatch(/^scout +enforce, budget spent +denied/m);
    expect(all.out).toMatch(/^free +enforce +denied/m);
    expect((await live("--agent", "free", "web.test")).out).not.toMatch(/budget/);
  });

  it("takes a budget edited in shield.yaml at the reload, counts kept", async () => {
    writeFileSync(
      s.file,
      readFileSync(s.file, "utf8").replace("budget: { requests: 2 }", "budget: { requests: 5 }"),
    );
    await until(
      async () => ((await agent("scout")).budgets[1]?.requests?.limit === 5 ? true : undefined),
      "reload",
    );
    expect((await asScout()).status).toBe(200);
    const scout = await agent("scout");
    expect(scout.budgets[1].requests).toEqual({ used: 3, limit: 5 });
    expect(scout.budgetUse).toMatchObject({ kind: "requests", fraction: 0.6 });
    const r = await cli(
      "shield",
      "agents",
      "--admin",
      s.admin,
      "--token-file",
      path.join(s.dir, "admin.token"),
    );
    expect(r.out).toMatch(/^scout .* requests 60% agent:scout$/m);
  });
});
