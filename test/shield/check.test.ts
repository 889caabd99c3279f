/**
 * `clawguard shield check`: destinations read as an agent would ask for them, decisions that
 * match what the running shield logs for the same requests, saved mode switches applied, and
 * the command's output and exit codes.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "./cli-harness.js";
import { checker, DestinationError, effectiveConfig, parseDestination } from "../../src/shield/check.js";
import { parseShieldConfig } from "../../src/shield/config.js";
import { EXAMPLE, SCOUT_HASH, SCOUT_TOKEN } from "./policy-fixtures.js";
import { rawExchange, startTestShield, TableResolver, v4 } from "./proxy-harness.js";

/** The documented example, with a CIDR for the address checks and names of scout's own. */
const YAML = EXAMPLE.replace(
  `token_sha256: "${SCOUT_HASH}" }`,
  `token_sha256: "${SCOUT_HASH}", allow: [rebind.test, inside.test, meta.test, 127.0.0.0/8] }`,
);
const TOKEN = SCOUT_TOKEN;

const resolver = new TableResolver({
  "api.openai.com": v4("127.0.0.1"),
  "x.anthropic.com": v4("127.0.0.1"),
  "rebind.test": v4("93.184.216.34", "10.1.2.3"),
  "inside.test": v4("127.0.0.1"),
  "meta.test": v4("169.254.169.254"),
}).resolve;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "clawguard-check-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("destinations", () => {
  it("reads URLs as plain requests or tunnels, and host[:port] as a CONNECT authority", () => {
    expect(parseDestination("http://Example.COM:8080/a/b?q=1")).toMatchObject({
      kind: "http",
      authority: "Example.COM:8080",
      defaultPort: 80,
      path: "/a/b",
    });
    expect(parseDestination("ws://example.com")).toMatchObject({ kind: "http", path: "/" });
    expect(parseDestination("https://example.com/x")).toMatchObject({
      kind: "connect",
      defaultPort: 443,
      path: null,
    });
    expect(parseDestination("wss://example.com:8443")).toMatchObject({
      kind: "connect",
      authority: "example.com:8443",
    });
    expect(parseDestination("[::1]:22")).toMatchObject({
      kind: "connect",
      authority: "[::1]:22",
      defaultPort: 443,
    });
    for (const bad of ["ftp://a.test", "https://", "a.test/path", "", "a b"])
      expect(() => parseDestination(bad), bad).toThrow(DestinationError);
  });
});

describe("decisions", () => {
  const cfg = parseShieldConfig(YAML, "shield.yaml");

  it("normalise the target and name the rule, as the proxy does", async () => {
    const ck = checker(cfg, { agentId: "scout" }, null);
    expect(ck.agent).toEqual({ id: "scout", fleet: "acme", tier: "crew" });
    const at = async (d: string) => ck.check(parseDestination(d));
    expect(await at("https://API.OpenAI.com./v1")).toMatchObject({
      host: "api.openai.com",
      port: 443,
      decision: "allowed",
      rule: "tier:crew allow api.openai.com",
      addresses: null,
    });
    // *.anthropic.com:443 in the tier: a plain request on port 80 matches nothing.
    expect(await at("http://x.anthropic.com/")).toMatchObject({ decision: "denied", rule: null });
    expect(await at("pastebin.com")).toMatchObject({ decision: "denied", rule: "global deny pastebin.com" });
    expect(await at("https://a.b.ngrok.io")).toMatchObject({
      decision: "denied",
      rule: "global deny *.ngrok.io",
    });
    expect((await at("http://bad..host/")).reason).toMatch(/^refused: bad target: /);
  });

  it("judge IP literals by address class without a resolver, and names' addresses with one", async () => {
    const names = checker(cfg, { agentId: "scout" }, null);
    // 127.0.0.0/8 is a CIDR rule: loopback opened explicitly, and the address to dial named.
    expect(await names.check(parseDestination("http://127.1:8080/"))).toMatchObject({
      host: "127.0.0.1",
      decision: "allowed",
      dial: "127.0.0.1",
    });
    // No rule names it: refused by name before any address is judged.
    expect(await names.check(parseDestination("http://0xa9fea9fe/latest"))).toMatchObject({
      host: "169.254.169.254",
      decision: "denied",
      addresses: null,
    });
    // Without a resolver a name is judged by name only.
    expect(await names.check(parseDestination("http://meta.test/"))).toMatchObject({
      decision: "allowed",
      addresses: null,
      dial: null,
    });

    const resolving = checker(cfg, { agentId: "scout" }, resolver);
    // Allowed by name, refused as link-local: no CIDR rule opens it.
    const meta = await resolving.check(parseDestination("http://meta.test/latest/meta-data"));
    expect(meta).toMatchObject({ decision: "denied", dial: null });
    expect(meta.addresses).toEqual([
      expect.objectContaining({ address: "169.254.169.254", decision: "denied" }),
    ]);
    expect(meta.reason).toMatch(/link-local/);
    // One private answer among public ones refuses the whole name.
    const rebind = await resolving.check(parseDestination("https://rebind.test"));
    expect(rebind).toMatchObject({ decision: "denied", dial: null });
    expect(rebind.addresses!.map((a) => [a.address, a.decision])).toEqual([
      ["93.184.216.34", "allowed"],
      ["10.1.2.3", "denied"],
    ]);
    expect(await resolving.check(parseDestination("https://inside.test"))).toMatchObject({
      decision: "allowed",
      dial: "127.0.0.1",
      rule: "agent:scout allow inside.test",
    });
    const missing = await resolving.check(parseDestination("https://api.anthropic.com"));
    expect(missing).toMatchObject({ decision: "allowed", dial: null });
    expect(missing.unresolved).toMatch(/api\.anthropic\.com/);
  });

  it("find the agent by source address, and refuse unknown agents and sources", async () => {
    expect(checker(cfg, { source: "127.0.0.2" }, null).agent.id).toBe("admiral");
    expect(() => checker(cfg, { agentId: "nobody" }, null)).toThrow(/no agent "nobody"/);
    expect(() => checker(cfg, { source: "127.0.0.9" }, null)).toThrow(/127\.0\.0\.9/);
    expect(() => checker(cfg, {}, null)).toThrow(/--agent/);
  });

  it("apply the mode switches saved through the admin API, and refuse a state file it cannot read", async () => {
    const state = path.join(dir, "modes.json");
    const withAdmin = parseShieldConfig(
      `${YAML}\nadmin: { state_file: ${state} }\n`,
      path.join(dir, "shield.yaml"),
    );
    writeFileSync(
      state,
      JSON.stringify({
        schema: "clawguard.shield-modes/v1",
        savedAt: "x",
        global: null,
        fleets: {},
        agents: { scout: "lockdown" },
      }),
    );
    const { cfg: live, switches } = await effectiveConfig(withAdmin);
    expect(switches).toBe(1);
    const ck = checker(live, { agentId: "scout" }, resolver);
    expect(ck.mode).toBe("lockdown");
    expect(await ck.check(parseDestination("api.openai.com"))).toMatchObject({
      decision: "denied",
      reason: "lockdown mode",
    });
    writeFileSync(state, "{ not json");
    await expect(effectiveConfig(withAdmin)).rejects.toThrow(/not JSON/);
  });
});

describe("agreement with the running shield", () => {
  it("decides every destination as the shield logs it", async () => {
    const t = await startTestShield(YAML, resolver);
    try {
      const cfg = parseShieldConfig(YAML, "shield.yaml");
      // The shield's own endpoint is its real port here.
      const live = { ...cfg, listen: { host: "127.0.0.1", port: t.port } };
      const ck = checker(live, { agentId: "scout" }, resolver);
      const auth = `Proxy-Authorization: Basic ${Buffer.from(`scout:${TOKEN}`).toString("base64")}\r\n`;
      const destinations = [
        "https://api.openai.com",
        "https://x.anthropic.com",
        "http://x.anthropic.com/p",
        "pastebin.com:443",
        "https://rebind.test",
        "https://inside.test:9",
        "http://0xa9fea9fe/latest",
        "http://meta.test/latest",
        "http://127.1:9/",
        `127.0.0.1:${t.port}`,
        "https://unknown.test",
      ];
      for (const given of destinations) {
        const d = parseDestination(given);
        const expected = await ck.check(d);
        const before = t.sink.records.length;
        const head =
          d.kind === "connect"
            ? `CONNECT ${d.authority.includes(":") ? d.authority : `${d.authority}:443`} HTTP/1.1\r\nHost: ${d.authority}\r\n`
            : `GET ${given} HTTP/1.1\r\nHost: ${d.authority}\r\nConnection: close\r\n`;
        await rawExchange(t.port, `${head}${auth}\r\n`, 1500);
        const [record] = await t.sink.waitFor(before + 1).then((rs) => rs.slice(before));
        expect({
          given,
          decision: record!.decision,
          rule: record!.rule,
          host: record!.host,
          port: record!.port,
        }).toEqual({
          given,
          decision: expected.decision,
          rule: expected.rule,
          host: expected.host,
          port: expected.port,
        });
        if (expected.decision === "denied") expect(record!.reason).toBe(expected.reason);
      }
    } finally {
      await t.close();
    }
  });
});

function readable(file: string): boolean {
  try {
    readFileSync(file);
    return true;
  } catch {
    return false;
  }
}

describe("clawguard shield check", () => {
  let file: string;
  beforeAll(() => {
    file = path.join(dir, "cli.yaml");
    writeFileSync(file, YAML);
  });

  it("validates a config: exit 0 with a summary, exit 2 naming the key for a broken one", async () => {
    const ok = await cli("shield", "check", "--config", file);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain(
      "valid; 2 agent(s), 2 tier(s), 1 fleet(s), 11 rule(s), mode enforce; 1 warning(s)",
    );
    // scout's 127.0.0.0/8 opens the shield host's loopback: a warning, an error only with --strict.
    expect(ok.out).toMatch(
      /warning agents\[0\]\.allow\[3\]: "127\.0\.0\.0\/8" lets agent scout reach services .*\[loopback-open\]/,
    );
    expect((await cli("shield", "check", "--config", file, "--strict")).code).toBe(1);
    const json = JSON.parse((await cli("shield", "check", "--config", file, "--json")).out) as Record<
      string,
      unknown
    >;
    expect(json).toMatchObject({ schema: "clawguard.shield-check/v1", valid: true, rules: 11 });
    expect(json.warnings).toEqual([
      expect.objectContaining({ code: "loopback-open", key: "agents[0].allow[3]" }),
    ]);
    const clean = path.join(dir, "clean.yaml");
    writeFileSync(clean, YAML.replace(", 127.0.0.0/8]", "]"));
    expect(await cli("shield", "check", "--config", clean, "--strict")).toMatchObject({ code: 0 });
    const broken = path.join(dir, "broken.yaml");
    writeFileSync(broken, YAML.replace("isolation: isolated", "isolation: sometimes"));
    const bad = await cli("shield", "check", "--config", broken);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("fleets.acme.isolation");
  });

  it("exits 0 when every destination is allowed, 1 when one is denied, and prints one line each", async () => {
    const allowed = await cli("shield", "check", "--config", file, "--agent", "scout", "api.openai.com");
    expect(allowed.code).toBe(0);
    expect(allowed.out).toMatch(/^agent scout \(fleet acme, tier crew\), mode enforce/);
    expect(allowed.out).toMatch(/allowed\s+CONNECT api\.openai\.com:443\s+tier:crew allow api\.openai\.com/);
    const mixed = await cli(
      "shield",
      "check",
      "--config",
      file,
      "--agent",
      "scout",
      "api.openai.com",
      "http://pastebin.com/x",
    );
    expect(mixed.code).toBe(1);
    expect(mixed.out).toMatch(/denied\s+GET pastebin\.com:80\/x\s+global deny pastebin\.com/);
  });

  it("names the budgets that hold for the agent, from every level", async () => {
    const budgeted = path.join(dir, "budgeted.yaml");
    writeFileSync(
      budgeted,
      YAML.replace("crew:      {", "crew: { budget: { upload: 50MB },").replace(
        `token_sha256: "${SCOUT_HASH}",`,
        `token_sha256: "${SCOUT_HASH}", budget: { requests: 100, window: 1m },`,
      ),
    );
    const r = await cli("shield", "check", "--config", budgeted, "--agent", "scout", "api.openai.com");
    expect(r.code).toBe(0);
    expect(r.out.split("\n")[1]).toBe(
      "budgets: upload 50MB per 1h (tier:crew); 100 requests per 1m (agent:scout)",
    );
    const json = JSON.parse(
      (await cli("shield", "check", "--config", budgeted, "--agent", "scout", "--json", "api.openai.com"))
        .out,
    );
    expect(json.budgets.map((b: { scope: string }) => b.scope)).toEqual(["tier:crew", "agent:scout"]);
    const none = await cli("shield", "check", "--config", file, "--agent", "scout", "api.openai.com");
    expect(none.out).not.toMatch(/budgets/);
  });

  it("tests a policy with --expect: exit 0 only when every destination is decided so", async () => {
    const check = (...args: string[]) =>
      cli("shield", "check", "--config", file, "--agent", "scout", ...args);
    const denied = await check("--expect", "denied", "pastebin.com", "https://x.ngrok.io", "api.github.com");
    expect(denied.code, denied.err).toBe(0);
    const leak = await check("--expect", "denied", "pastebin.com", "api.openai.com");
    expect(leak.code).toBe(1);
    expect(leak.out).toMatch(/allowed\s+CONNECT api\.openai\.com:443 .*\(expected denied\)/);
    expect(leak.out).not.toMatch(/pastebin.*expected/);
    const json = JSON.parse(
      (await check("--json", "--expect", "allowed", "api.openai.com", "pastebin.com")).out,
    );
    expect(json).toMatchObject({ expect: "allowed", unexpected: ["pastebin.com"] });
    // Allowed is not audited: an expectation names one decision.
    expect((await check("--expect", "audited", "api.openai.com")).code).toBe(1);
    // A destination the shield cannot read would be denied, and pass an expectation vacuously.
    const unreadable = await check("--expect", "denied", "*.ngrok.io");
    expect(unreadable.code).toBe(2);
    expect(unreadable.err).toMatch(/destination "\*\.ngrok\.io": .*invalid label/);
    expect((await check("*.ngrok.io")).out).toMatch(/denied .*bad target/);
    const bad = await check("--expect", "maybe", "api.openai.com");
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--expect must be one of allowed, audited, denied/);
  });

  it("asks every agent with --all-agents: one row each, and a policy test over all of them", async () => {
    const all = (...args: string[]) => cli("shield", "check", "--config", file, "--all-agents", ...args);
    const table = await all("api.github.com", "pastebin.com");
    expect(table.code).toBe(1);
    const rows = table.out.split("\n");
    expect(rows[1]).toMatch(/^AGENT\s+MODE\s+api\.github\.com\s+pastebin\.com$/);
    expect(rows.find((r) => r.startsWith("scout"))).toMatch(/^scout\s+enforce\s+denied\s+denied$/);
    expect(rows.find((r) => r.startsWith("admiral"))).toMatch(/^admiral\s+enforce\s+allowed\s+denied$/);
    const test = await all("--expect", "denied", "api.github.com", "pastebin.com");
    expect(test.code).toBe(1);
    expect(test.out).toMatch(/^admiral\s+enforce\s+allowed!\s+denied$/m);
    expect(test.out).toMatch(/! not denied as expected: 1/);
    expect((await all("--expect", "denied", "pastebin.com", "https://x.ngrok.io")).code).toBe(0);
    const json = JSON.parse((await all("--json", "--expect", "denied", "api.github.com")).out);
    expect(json).toMatchObject({
      schema: "clawguard.shield-check/v1",
      all: true,
      expect: "denied",
      unexpected: [{ agent: "admiral", destination: "api.github.com", decision: "allowed" }],
    });
    expect(json.agents.map((a: { agent: { id: string } }) => a.agent.id)).toEqual(["scout", "admiral"]);
    expect(json.agents[1].results[0]).toMatchObject({ rule: "tier:commodore allow api.github.com" });
    const both = await cli("shield", "check", "--config", file, "--all-agents", "--agent", "scout", "a.test");
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/exactly one of --agent ID, --source ADDRESS or --all-agents/);
  });

  it("runs a policy tests file, naming the line of every expectation that does not hold", async () => {
    const tests = path.join(dir, "policy-tests.yaml");
    writeFileSync(
      tests,
      [
        "# what the fleet may and may not reach",
        "- agent: scout",
        '  allowed: [api.openai.com, "https://x.anthropic.com/v1"]',
        '  denied: [pastebin.com, "http://169.254.169.254/"]',
        "- source: 127.0.0.2",
        "  allowed: [api.github.com]",
        "- all: true",
        "  denied: [pastebin.com, x.ngrok.io, api.github.com]",
        "",
      ].join("\n"),
    );
    const run = (...args: string[]) => cli("shield", "check", "--config", file, "--tests", tests, ...args);
    const r = await run();
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^.*policy-tests\.yaml: 11 expectation\(s\) in 3 case\(s\), 1 do not hold/);
    expect(r.out).toMatch(
      /FAIL {2}.*policy-tests\.yaml:7 {2}admiral {2}api\.github\.com {2}allowed \(expected denied\) {2}tier:commodore allow api\.github\.com\n/,
    );
    expect(r.out.match(/FAIL/g)).toHaveLength(1);
    const json = JSON.parse((await run("--json")).out);
    expect(json).toMatchObject({ schema: "clawguard.shield-check-tests/v1", cases: 3, failed: 1 });
    expect(json.outcomes).toHaveLength(11);
    expect(json.outcomes.filter((o: { holds: boolean }) => o.holds)).toHaveLength(10);
    // Fixed, the same file passes.
    writeFileSync(tests, readFileSync(tests, "utf8").replace(", api.github.com]", "]"));
    expect((await run()).code).toBe(0);
  });

  it("refuses a broken tests file with file, line and key, and runs none of it", async () => {
    const bad = path.join(dir, "bad-tests.yaml");
    const cases: Array<[string, RegExp]> = [
      [
        "- agent: scout\n  denied: [ftp://a.test]\n",
        /bad-tests\.yaml:2: \[0\]\.denied\[0\]: destination "ftp:\/\/a\.test"/,
      ],
      ["- agent: scout\n  alowed: [a.test]\n", /bad-tests\.yaml:2: \[0\]\.alowed: unknown key "alowed"/],
      [
        '- agent: scout\n  denied: [pastebin.com, "*.ngrok.io"]\n',
        /bad-tests\.yaml:2: \[0\]\.denied\[1\]: destination "\*\.ngrok\.io": invalid label/,
      ],
      [
        "- agent: scout\n  source: 127.0.0.2\n  denied: [a.test]\n",
        /bad-tests\.yaml:1: \[0\]: give exactly one of agent/,
      ],
      ["- agent: scout\n", /give destinations under allowed, audited or denied/],
      ["agent: scout\n", /bad-tests\.yaml:1: expected a list of cases/],
      ["- agent: nobody\n  denied: [a.test]\n", /bad-tests\.yaml:1: no agent "nobody" in the config/],
    ];
    for (const [text, why] of cases) {
      writeFileSync(bad, text);
      const r = await cli("shield", "check", "--config", file, "--tests", bad);
      expect(r.code, text).toBe(2);
      expect(r.err, text).toMatch(why);
      expect(r.out, text).toBe("");
    }
    const missing = await cli("shield", "check", "--config", file, "--tests", path.join(dir, "none.yaml"));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/none\.yaml: file does not exist\nhint: pass --tests PATH\n$/);
    const mixed = await cli("shield", "check", "--config", file, "--tests", bad, "--agent", "scout");
    expect(mixed.code).toBe(2);
    expect(mixed.err).toMatch(/--tests takes its agents/);
  });

  it("prints JSON with its schema", async () => {
    const r = await cli(
      "shield",
      "check",
      "--config",
      file,
      "--source",
      "127.0.0.2",
      "--json",
      "https://api.github.com",
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j).toMatchObject({
      schema: "clawguard.shield-check/v1",
      agent: { id: "admiral" },
      mode: "enforce",
      resolved: false,
      results: [
        {
          destination: "https://api.github.com",
          decision: "allowed",
          rule: "tier:commodore allow api.github.com",
        },
      ],
    });
  });

  it("refuses bad input with exit 2 and a reason, judging nothing", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--agent", "scout", "ftp://a.test"], /not ftp/],
      [["--agent", "nobody", "a.test"], /no agent "nobody"/],
      [["a.test"], /exactly one of --agent/],
      [["--agent", "scout", "--source", "127.0.0.2", "a.test"], /exactly one of --agent/],
      [["--all-agents"], /give one or more destinations/],
      [["--agent", "scout"], /give one or more destinations/],
    ];
    for (const [args, why] of cases) {
      const r = await cli("shield", "check", "--config", file, ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(why);
      expect(r.out).toBe("");
    }
    const unreadable = path.join(dir, "unreadable.yaml");
    writeFileSync(unreadable, YAML);
    chmodSync(unreadable, 0);
    const r = await cli("shield", "check", "--config", unreadable);
    // Whoever may read a mode-0 file anyway (root with CAP_DAC_OVERRIDE) gets a valid config.
    if (readable(unreadable)) expect(r.code).toBe(0);
    else {
      expect(r.code).toBe(2);
      expect(r.err).toContain("permission denied");
    }
  });
});
