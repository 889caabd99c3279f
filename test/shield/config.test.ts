import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfigError } from "../../src/errors.js";
import { loadShieldConfig, parseShieldConfig } from "../../src/shield/config.js";
import { EXAMPLE, SCOUT_HASH } from "./policy-fixtures.js";

function configError(text: string, file = "/etc/clawguard/shield.yaml"): ConfigError {
  try {
    parseShieldConfig(text, file);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("config was accepted");
}

const BASE = "listen: 127.0.0.1:3128\nlog: { path: /var/lib/shield.db }\n";

describe("parseShieldConfig", () => {
  it("loads the documented example and means what it says", () => {
    const cfg = parseShieldConfig(EXAMPLE, "/etc/clawguard/shield.yaml");
    expect(cfg.listen).toEqual({ host: "127.0.0.1", port: 3128 });
    expect(cfg.log.path).toBe("/etc/clawguard/shield.db");
    expect(cfg.mode).toBe("enforce");
    expect(cfg.tiers.crew).toEqual({ allow: ["api.openai.com", "*.anthropic.com:443"], deny: [] });
    expect(cfg.fleets.acme?.isolation).toBe("isolated");
    expect(cfg.agents).toEqual([
      { id: "scout", fleet: "acme", tier: "crew", tokenSha256: SCOUT_HASH, allow: [], deny: [] },
      { id: "admiral", fleet: "acme", tier: "commodore", sources: ["127.0.0.2/32"], allow: [], deny: [] },
    ]);
    expect(cfg.deny).toEqual(["pastebin.com", "*.ngrok.io"]);
    expect(cfg.allow).toEqual([]);
    expect(cfg.limits).toEqual({
      maxHeaderBytes: 16384,
      headerTimeoutMs: 10_000,
      idleTimeoutMs: 120_000,
      connectTimeoutMs: 10_000,
      maxTunnelsPerAgent: 512,
    });
    expect(cfg.refusal).toBe("403");
    expect(cfg.stripHeaders).toEqual([]);
    expect(cfg.httpServer).toBe("clawguard");
    expect(cfg.admin).toBeUndefined();
  });

  it("reads every optional key in snake_case into camelCase", () => {
    const cfg = parseShieldConfig(
      `listen: "[::1]:3128"
log: { path: /var/lib/shield.db, retention_days: 30, max_bytes: 1000000 }
mode: audit
fleets:
  blue: { isolation: fleet, mode: lockdown, allow: [example.org], deny: [bad.example.org] }
agents:
  - id: a1
    fleet: blue
    token_sha256: "${"AB".repeat(32)}"
    sources: [10.9.0.0/16, "fd00::/8"]
    mode: audit
    allow: ["10.1.0.0/16:5432"]
limits: { max_header_bytes: 8192, max_tunnels_per_agent: 3 }
refusal: reset
strip_headers: [X-Trace-Id]
http_server: node
admin: { listen: 127.0.0.1:9090 }
`,
      "s.yaml",
    );
    expect(cfg.listen).toEqual({ host: "::1", port: 3128 });
    expect(cfg.log).toEqual({
      path: path.resolve("/var/lib/shield.db"),
      retentionDays: 30,
      maxBytes: 1000000,
    });
    expect(cfg.mode).toBe("audit");
    expect(cfg.fleets.blue).toEqual({
      isolation: "fleet",
      mode: "lockdown",
      allow: ["example.org"],
      deny: ["bad.example.org"],
    });
    expect(cfg.agents[0]?.tokenSha256).toBe("ab".repeat(32));
    expect(cfg.agents[0]?.sources).toEqual(["10.9.0.0/16", "fd00::/8"]);
    expect(cfg.agents[0]?.mode).toBe("audit");
    expect(cfg.limits.maxHeaderBytes).toBe(8192);
    expect(cfg.limits.maxTunnelsPerAgent).toBe(3);
    expect(cfg.limits.idleTimeoutMs).toBe(120_000);
    expect(cfg.refusal).toBe("reset");
    expect(cfg.stripHeaders).toEqual(["x-trace-id"]);
    expect(cfg.httpServer).toBe("node");
    expect(cfg.admin).toEqual({
      listen: { host: "127.0.0.1", port: 9090 },
      stateFile: path.join(path.dirname(cfg.log.path), "shield-modes.json"),
    });
  });

  it("accepts refusal: 403 written as a number", () => {
    expect(parseShieldConfig(`${BASE}refusal: 403\n`, "s.yaml").refusal).toBe("403");
  });

  it.each([
    [
      "bad YAML, with its line",
      `${BASE}agents:\n  - { id: a, sources: [10.0.0.0/8\ndeny: []\n`,
      5,
      "",
      "invalid YAML",
    ],
    ["a duplicate key", `${BASE}mode: audit\nmode: enforce\n`, 4, "", 'duplicate key "mode"'],
    ["an unknown top-level key", `${BASE}alow: [example.com]\n`, 3, "alow", 'unknown key "alow"'],
    [
      "an unknown agent key",
      `${BASE}agents:\n  - id: a\n    sources: [10.0.0.0/8]\n    token: abc\n`,
      6,
      "agents[0].token",
      'unknown key "token"',
    ],
    [
      "an unknown limits key",
      `${BASE}limits:\n  max_header_byte: 10\n`,
      4,
      "limits.max_header_byte",
      "unknown key",
    ],
    ["a missing listen", "log: { path: x }\n", 1, "listen", 'required key "listen" is missing'],
    ["a bad mode", `${BASE}mode: permissive\n`, 3, "mode", "enforce"],
    ["a bad isolation", `${BASE}fleets:\n  f: { isolation: none }\n`, 4, "fleets.f.isolation", "isolated"],
    ["a negative limit", `${BASE}limits: { idle_timeout_ms: -1 }\n`, 3, "limits.idle_timeout_ms", "expected"],
    ["a bad refusal", `${BASE}refusal: 404\n`, 3, "refusal", ""],
    [
      "a listen without a port",
      "listen: 127.0.0.1\nlog: { path: x }\n",
      1,
      "listen",
      "no port; write HOST:PORT",
    ],
    ["a listen on a name", "listen: shield.local:3128\nlog: { path: x }\n", 1, "listen", "not an IP address"],
    [
      "a bad CIDR in sources",
      `${BASE}agents:\n  - { id: a, sources: [10.0.0.0/8, 10.0.0.1/33] }\n`,
      4,
      "agents[0].sources[1]",
      "bad CIDR: prefix length",
    ],
    [
      "a CIDR with host bits in sources",
      `${BASE}agents:\n  - { id: a, sources: [10.0.0.1/8] }\n`,
      4,
      "agents[0].sources[0]",
      "host bits",
    ],
    [
      "a token that is not a sha256",
      `${BASE}agents:\n  - { id: a, token_sha256: hunter2 }\n`,
      4,
      "agents[0].token_sha256",
      "64 hex characters",
    ],
    [
      "a duplicate agent id",
      `${BASE}agents:\n  - { id: a, sources: [10.0.0.1] }\n  - { id: a, sources: [10.0.0.2] }\n`,
      5,
      "agents[1].id",
      'duplicate agent id "a" (first defined at agents[0])',
    ],
    [
      "an undefined tier",
      `${BASE}agents:\n  - { id: a, tier: crew, sources: [10.0.0.1] }\n`,
      4,
      "agents[0].tier",
      'tier "crew" is not defined',
    ],
    [
      "an undefined fleet",
      `${BASE}agents:\n  - { id: a, fleet: acme, sources: [10.0.0.1] }\n`,
      4,
      "agents[0].fleet",
      'fleet "acme" is not defined',
    ],
    [
      "an agent nobody can be identified as",
      `${BASE}agents:\n  - { id: a }\n`,
      4,
      "agents[0]",
      "needs token_sha256, sources, or both",
    ],
    [
      "two source-only agents on one range",
      `${BASE}agents:\n  - { id: a, sources: [10.0.0.0/24] }\n  - { id: b, sources: [10.0.0.0/24] }\n`,
      5,
      "agents[1].sources[0]",
      "already identifies agents[0]",
    ],
    [
      "a bad rule in a tier",
      `${BASE}tiers:\n  crew:\n    allow:\n      - api.openai.com\n      - "*example.com"\n`,
      7,
      "tiers.crew.allow[1]",
      'only a leading "*." wildcard',
    ],
    ["a URL as a rule", `${BASE}deny: ["https://pastebin.com/"]\n`, 3, "deny[0]", "not a URL"],
    ["a bad CIDR rule", `${BASE}allow: [10.0.0.0/99]\n`, 3, "allow[0]", "prefix length"],
    ["a bad port in a rule", `${BASE}allow: ["example.com:99999"]\n`, 3, "allow[0]", "out of range"],
    [
      "a bad agent id",
      `${BASE}agents:\n  - { id: "a b", sources: [10.0.0.1] }\n`,
      4,
      "agents[0].id",
      "must match",
    ],
    ["a bad header name", `${BASE}strip_headers: ["X Bad"]\n`, 3, "strip_headers[0]", "not a header name"],
    ["an HTTP server the shield has not got", `${BASE}http_server: nginx\n`, 3, "http_server", '"clawguard"'],
    [
      "the admin API on the proxy's port",
      `${BASE}admin: { listen: 127.0.0.1:3128 }\n`,
      3,
      "admin.listen",
      "must not share",
    ],
  ])("refuses %s, naming file, line, key path and reason", (_what, text, line, keyPath, reason) => {
    const err = configError(text);
    const p = err.problems[0];
    expect(p?.keyPath).toBe(keyPath);
    expect(p?.line).toBe(line);
    expect(p?.reason).toContain(reason);
    expect(err.message.split("\n")[0]).toBe(
      `/etc/clawguard/shield.yaml:${line}: ${keyPath === "" ? "" : `${keyPath}: `}${p?.reason}`,
    );
  });

  it("reports every problem at once, not only the first", () => {
    const err = configError(
      `${BASE}agents:\n  - { id: a, tier: nope, sources: [10.0.0.1] }\n  - { id: b, fleet: nope, sources: [10.0.0.2] }\n`,
    );
    expect(err.problems.map((p) => p.keyPath)).toEqual(["agents[0].tier", "agents[1].fleet"]);
    expect(err.message.split("\n")).toHaveLength(2);
  });

  it("refuses a document that is not a mapping", () => {
    expect(configError("- a\n- b\n").problems[0]?.reason).toContain("expected a mapping");
    expect(configError("").problems[0]?.reason).toContain("expected a mapping");
  });
});

describe("aliases in shield.yaml", () => {
  it("refuses a billion-laughs document at once, naming the file and the line of the alias that blows up", () => {
    // Nine nodes, nine times nine, ...: expanded, the last line alone holds 9^9 strings.
    const names = "abcdefghi";
    const lines = [`a: &a [${Array(9).fill("lol").join(", ")}]`];
    for (let i = 1; i < names.length; i++)
      lines.push(
        `${names[i]}: &${names[i]} [${Array(9)
          .fill(`*${names[i - 1]}`)
          .join(", ")}]`,
      );
    const err = configError(`${BASE}${lines.join("\n")}\n`);
    // a to e add 74,682 nodes; the first *e on line 8 adds 66,429 more.
    expect(err.problems).toHaveLength(1);
    expect(err.where).toBe("/etc/clawguard/shield.yaml:8");
    expect(err.problems[0]?.keyPath).toBe("f[0]");
    expect(err.problems[0]?.reason).toMatch(/^alias \*e would grow the document past 100000 nodes/);
  }, 5_000);

  it("accepts one anchor shared by many agents", () => {
    const agents = Array.from(
      { length: 150 },
      (_, i) => `  - { id: a${i}, sources: [10.0.${i >> 8}.${i & 255}], allow: *common }`,
    );
    const cfg = parseShieldConfig(
      `${BASE}tiers:\n  t: { allow: &common [api.openai.com, "*.anthropic.com"] }\nagents:\n${agents.join("\n")}\n`,
      "s.yaml",
    );
    expect(cfg.agents).toHaveLength(150);
    expect(cfg.agents[149]?.allow).toEqual(["api.openai.com", "*.anthropic.com"]);
  });

  it.each([
    [
      "an alias inside the node it names",
      `${BASE}deny: &d [a.example, *d]\n`,
      3,
      "deny[1]",
      "inside the node it names",
    ],
    ["an alias without its anchor", `${BASE}deny: *nothing\n`, 3, "deny", "names no anchor"],
  ])("refuses %s, naming its line", (_what, text, line, keyPath, reason) => {
    const err = configError(text);
    expect(err.problems[0]).toMatchObject({ line, keyPath });
    expect(err.problems[0]?.reason).toContain(reason);
  });
});

describe("loadShieldConfig", () => {
  it("resolves the log path from the config file's directory", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shield-config-"));
    const file = path.join(dir, "shield.yaml");
    writeFileSync(file, EXAMPLE);
    const cfg = await loadShieldConfig(file);
    expect(cfg.log.path).toBe(path.join(dir, "shield.db"));
    expect(cfg.file).toBe(file);
  });

  it("names a missing file and says what to do", async () => {
    const file = path.join(tmpdir(), "no-such-dir-shield", "shield.yaml");
    await expect(loadShieldConfig(file)).rejects.toMatchObject({
      code: "CG_FILE_UNREADABLE",
      message: `${file}: file does not exist`,
      hint: "pass --config PATH",
    });
  });
});
