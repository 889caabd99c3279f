/**
 * One corpus of requests (agents x destinations x modes, with a budget running out on the way)
 * sent through the proxy and asked of every way the shield answers "what would you do": the
 * admin API's check (before each request, so it sees the budget the request will meet), a check
 * of the file as `shield check` runs it, and the admin API's policy tests. Every answer must be
 * the proxy's, decision, rule and reason alike: they are one admission path.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { askPolicy, compilePolicy, effectiveConfig, parseDestination } from "../../src/shield/check.js";
import { loadShieldConfig } from "../../src/shield/config.js";
import type { LogRecord } from "../../src/shield/types.js";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { basic, sha256, TableResolver, Upstream, v4, v6 } from "./proxy-harness.js";

const TOKENS = {
  scout: "scout-corpus-token",
  rover: "rover-corpus-token",
  lean: "lean-corpus-token",
  open: "open-corpus-token",
};
type AgentId = keyof typeof TOKENS;
const AGENTS = Object.keys(TOKENS) as AgentId[];
/** Agents whose budgets a file check cannot know: the proxy counts them as the corpus runs. */
const BUDGETED: ReadonlySet<AgentId> = new Set(["lean"]);

const resolver = new TableResolver({
  "a.ok.test": v4("127.0.0.3"),
  "b.ok.test": v4("127.0.0.3"),
  "bad.ok.test": v4("127.0.0.3"),
  "meta.ok.test": v4("169.254.169.254"),
  "zero.ok.test": v4("0.0.0.0"),
  "zero6.ok.test": v6("::"),
  "mixed.ok.test": [
    [
      { address: "127.0.0.3", family: 4 },
      { address: "10.0.0.1", family: 4 },
    ],
  ],
  "fleet.test": v4("127.0.0.3"),
  "other.test": v4("127.0.0.3"),
});

let web: Upstream;
let s: AdminShield;
const records: LogRecord[] = [];

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  s = await startAdminShield(
    `tiers:
  crew: { allow: ["*.ok.test", 127.0.0.3/32], deny: [bad.ok.test] }
fleets:
  acme: { isolation: fleet, allow: [fleet.test, 127.0.0.3/32] }
agents:
  - { id: scout, tier: crew, token_sha256: "${sha256(TOKENS.scout)}" }
  - { id: rover, fleet: acme, token_sha256: "${sha256(TOKENS.rover)}", allow: ["a.ok.test:${web.port}"] }
  - { id: lean, token_sha256: "${sha256(TOKENS.lean)}", allow: ["*.ok.test", 127.0.0.3/32], budget: { requests: 9, window: 1h } }
  - { id: open, token_sha256: "${sha256(TOKENS.open)}", allow: ["*", 0.0.0.0/0, "::/0"], deny: [other.test] }
`,
    { resolver: resolver.resolve, watch: false },
  );
  s.managed.control.events.on("decision", (r: LogRecord) => records.push(r));
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

/** Destinations, each as the agent's client sends it: a plain request, or a CONNECT. */
function corpus(): string[] {
  const p = web.port;
  const hosts = [
    "a.ok.test",
    "B.OK.TEST.",
    "bad.ok.test",
    "meta.ok.test",
    "zero.ok.test",
    "zero6.ok.test",
    "mixed.ok.test",
    "gone.ok.test",
    "fleet.test",
    "other.test",
    "127.0.0.3",
    "0x7f000003",
    "[::ffff:127.0.0.3]",
    "0.0.0.0",
    "[::]",
    "169.254.169.254",
  ];
  return hosts.flatMap((h) => [`http://${h}:${p}/c`, `${h}:${p}`]);
}

type Answer = Pick<LogRecord, "decision" | "rule" | "reason">;
const answer = (x: Answer): Answer => ({ decision: x.decision, rule: x.rule, reason: x.reason });

/** Send one request through the proxy as `agent`; the record the shield wrote for it. */
async function throughProxy(agent: AgentId, destination: string): Promise<Answer> {
  const before = records.length;
  const auth = `Proxy-Authorization: ${basic(agent, TOKENS[agent])}\r\n`;
  const d = parseDestination(destination);
  const head =
    d.kind === "http"
      ? `GET http://${d.authority}${d.path} HTTP/1.1\r\nHost: ${d.authority}\r\n${auth}Connection: close\r\n\r\n`
      : `CONNECT ${d.authority} HTTP/1.1\r\nHost: ${d.authority}\r\n${auth}\r\n`;
  await new Promise<void>((resolve) => {
    const sock = net.connect(s.proxyPort, "127.0.0.1");
    let reply = "";
    sock.on("data", (b: Buffer) => {
      reply += b.toString("latin1");
      // A tunnel is open once answered 200: close it, its record follows.
      if (d.kind === "connect" && reply.includes("\r\n\r\n")) sock.destroy();
    });
    sock.on("error", () => undefined);
    sock.on("close", () => resolve());
    sock.write(head);
  });
  await expect.poll(() => records.length, { timeout: 5000 }).toBeGreaterThan(before);
  expect(records.length, destination).toBe(before + 1);
  const r = answer(records[before]!);
  // Admitted, then the dial failed (an allowed metadata address with nothing behind it here):
  // what the destination did is past admission, and no check can know it.
  return { ...r, reason: r.reason.replace(/; connect \S+: [A-Z]+$/, "") };
}

async function apiCheck(agent: AgentId, destination: string): Promise<Answer> {
  const r = await s.api("POST", "/api/check", { agent, destinations: [destination], resolve: true });
  expect(r.status).toBe(200);
  return answer(r.json.results[0]);
}

const MODES: Array<{ name: string; set: Array<{ scope: string; id?: string; mode: string | null }> }> = [
  { name: "enforce", set: [] },
  { name: "audit", set: [{ scope: "global", mode: "audit" }] },
  {
    name: "a fleet in lockdown, one agent in audit",
    set: [
      { scope: "global", mode: "enforce" },
      { scope: "fleet", id: "acme", mode: "lockdown" },
      { scope: "agent", id: "scout", mode: "audit" },
    ],
  },
];

describe("one corpus through every way the shield decides", () => {
  it("gets the proxy's decision, rule and reason from the API check, the file check and the policy tests", async () => {
    const destinations = corpus();
    const mismatches: string[] = [];
    const kinds = new Set<string>();
    let budgetRefusals = 0;
    for (const mode of MODES) {
      for (const m of mode.set) expect((await s.api("PUT", "/api/mode", m)).status).toBe(200);
      // The file check sees what the shield started with plus the mode switches saved since.
      const { cfg } = await effectiveConfig(await loadShieldConfig(s.file));
      const policy = compilePolicy({
        ...cfg,
        listen: { ...cfg.listen, port: s.proxyPort },
        admin: { ...cfg.admin!, listen: { ...cfg.admin!.listen, port: s.adminPort } },
      });
      const expectations: Record<string, Record<string, string[]>> = {};
      for (const agent of AGENTS) {
        const file = await askPolicy(
          policy,
          AGENTS,
          { agent },
          destinations.map(parseDestination),
          resolver.resolve,
          null,
        );
        for (const [i, destination] of destinations.entries()) {
          const api = await apiCheck(agent, destination);
          const proxy = await throughProxy(agent, destination);
          const where = `${mode.name}: ${agent} ${destination}`;
          if (JSON.stringify(api) !== JSON.stringify(proxy))
            mismatches.push(`${where}: api ${JSON.stringify(api)} proxy ${JSON.stringify(proxy)}`);
          const f = answer(file[0]!.results[i]!);
          if (!BUDGETED.has(agent) && JSON.stringify(f) !== JSON.stringify(proxy))
            mismatches.push(`${where}: file ${JSON.stringify(f)} proxy ${JSON.stringify(proxy)}`);
          kinds.add(proxy.decision);
          if (proxy.rule?.endsWith(" budget")) budgetRefusals++;
          if (!BUDGETED.has(agent)) ((expectations[agent] ??= {})[proxy.decision] ??= []).push(destination);
        }
      }
      // The policy tests of the API, expecting what the proxy did, hold for every case.
      const tests = Object.entries(expectations)
        .map(
          ([agent, by]) =>
            `- agent: ${agent}\n${Object.entries(by)
              .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
              .join("\n")}`,
        )
        .join("\n");
      const t = await s.api("POST", "/api/check-tests", { tests, resolve: true });
      expect(t.status, t.text).toBe(200);
      expect(t.json.failed, JSON.stringify(t.json.outcomes.filter((o: { holds: boolean }) => !o.holds))).toBe(
        0,
      );
    }
    expect(mismatches).toEqual([]);
    // The corpus reaches every kind of answer, a spent budget included: a comparison of
    // answers that were all "denied" would prove nothing.
    expect([...kinds].sort()).toEqual(["allowed", "audited", "denied"]);
    expect(budgetRefusals).toBeGreaterThan(3);
  }, 120_000);
});
