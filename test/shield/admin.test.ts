import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startManagedShield } from "../../src/shield/daemon.js";
import { loadShieldConfig } from "../../src/shield/config.js";
import type { Resolver } from "../../src/shield/net/resolve.js";
import { ADMIN_TOKEN, openTunnel, startAdminShield, until, type AdminShield } from "./admin-harness.js";
import { curl, rawExchange, basic, sha256, TableResolver, Upstream, v4 } from "./proxy-harness.js";

const SCOUT = "scout-proxy-password";
const ROVER = "rover-proxy-password";
const AUDITOR = "auditor-proxy-password";

const resolver = new TableResolver({
  "web.test": v4("127.0.0.3"),
  "later.test": v4("127.0.0.3"),
  "free.test": v4("127.0.0.3"),
});

const body = () => `mode: enforce
tiers:
  crew:
    # the crew may reach the test web server
    allow: [web.test, 127.0.0.3/32]
fleets:
  acme: { isolation: isolated }
agents:
  - id: scout
    fleet: acme
    tier: crew
    token_sha256: "${sha256(SCOUT)}"
    # scout's own rules
    allow: []
  - { id: rover, fleet: acme, tier: crew, token_sha256: "${sha256(ROVER)}", allow: [127.0.0.0/8] }
  - { id: auditor, mode: audit, token_sha256: "${sha256(AUDITOR)}", allow: [127.0.0.3/32] }
`;

let web: Upstream;
let s: AdminShield;

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  s = await startAdminShield(body(), { resolver: resolver.resolve });
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

const as = (agent: string, pass: string) => ["-x", s.proxyUrl, "--proxy-user", `${agent}:${pass}`];
const at = (host: string, p = "/") => `http://${host}:${web.port}${p}`;

const ENDPOINTS: Array<[string, string, unknown?]> = [
  ["GET", "/api/status"],
  ["GET", "/api/agents"],
  ["GET", "/api/traffic"],
  ["PUT", "/api/mode", { scope: "global", mode: "lockdown" }],
  ["GET", "/api/rules"],
  ["POST", "/api/rules", { level: "global", verdict: "allow", rule: "evil.test" }],
  ["DELETE", "/api/rules", { level: "tier", name: "crew", verdict: "allow", rule: "web.test" }],
  ["GET", "/api/log"],
  ["POST", "/api/check", { agent: "scout", destinations: ["web.test:443"] }],
  ["POST", "/api/reload"],
  ["GET", "/api/events"],
  ["GET", "/metrics"],
];

describe("authentication", () => {
  it("answers 401 on every endpoint without the token, with a wrong one and with a near miss", async () => {
    const before = readFileSync(s.file, "utf8");
    for (const [method, p, b] of ENDPOINTS) {
      for (const token of [null, "wrong", ADMIN_TOKEN.slice(0, -1), ADMIN_TOKEN + "x", ""]) {
        const r = await s.api(method, p, b, token);
        expect(r.status, `${method} ${p} with ${String(token)}`).toBe(401);
        expect(r.text).not.toContain(ADMIN_TOKEN.slice(0, 8));
      }
      const basicAuth = await fetch(s.admin + p, {
        method,
        headers: { authorization: basic("admin", ADMIN_TOKEN) },
      });
      expect(basicAuth.status).toBe(401);
      await basicAuth.body?.cancel();
    }
    // Nothing the refused calls asked for happened.
    expect(readFileSync(s.file, "utf8")).toBe(before);
    const st = await s.api("GET", "/api/status");
    expect(st.json.modes.global).toBe("enforce");
  });

  it("serves the dashboard without a token, with a strict CSP and no data in it", async () => {
    const res = await fetch(s.admin + "/");
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe");
    const html = await res.text();
    expect(html).toContain('name="viewport"');
    expect(html).not.toMatch(/https?:\/\//);
    for (const asset of ["/dashboard.js", "/dashboard.css"]) {
      const r = await fetch(s.admin + asset);
      expect(r.status).toBe(200);
      expect(await r.text()).not.toMatch(/https?:\/\/(?!admin)/);
    }
  });

  it("answers 404 for unknown paths and 405 for a wrong method", async () => {
    expect((await s.api("GET", "/api/nope")).status).toBe(404);
    expect((await s.api("GET", "/etc/passwd")).status).toBe(404);
    const r = await s.api("POST", "/api/status", {});
    expect(r.status).toBe(405);
  });
});

describe("refusing to start (fail closed)", () => {
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ["no token file", () => undefined, /cannot read the admin token file.*ENOENT/],
    [
      "a token file others can read",
      (d) => writeFileSync(path.join(d, "admin.token"), ADMIN_TOKEN, { mode: 0o644 }),
      /readable by group or others.*chmod 600/,
    ],
    [
      "an empty token",
      (d) => writeFileSync(path.join(d, "admin.token"), "\n", { mode: 0o600 }),
      /at least 16/,
    ],
    [
      "a short token",
      (d) => writeFileSync(path.join(d, "admin.token"), "abc123", { mode: 0o600 }),
      /at least 16/,
    ],
  ];
  for (const [what, setup, message] of cases) {
    it(`refuses with ${what}, and never opens the proxy port`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), "clawguard-admin-bad-"));
      try {
        setup(dir);
        if (what.includes("others")) chmodSync(path.join(dir, "admin.token"), 0o644);
        const port = await freePort();
        const file = path.join(dir, "shield.yaml");
        writeFileSync(
          file,
          `listen: 127.0.0.1:${port}\nlog: { path: shield.db }\nadmin: { listen: 127.0.0.1:0, token_file: admin.token }\n`,
        );
        const cfg = await loadShieldConfig(file);
        await expect(startManagedShield(cfg, { watch: false })).rejects.toThrow(message);
        const probe = await rawExchange(port, "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 500);
        expect(probe.reply).toBe("");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("refuses an admin section without token_file", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "clawguard-admin-bad-"));
    try {
      const file = path.join(dir, "shield.yaml");
      writeFileSync(file, `listen: 127.0.0.1:0\nlog: { path: shield.db }\nadmin: { listen: 127.0.0.1:0 }\n`);
      const cfg = await loadShieldConfig(file);
      await expect(startManagedShield(cfg, { watch: false })).rejects.toThrow(/admin.token_file is not set/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the admin endpoint through the proxy", () => {
  it("refuses CONNECT and plain HTTP to the admin port even for an agent allowed all of loopback", async () => {
    const ok = await curl([...as("rover", ROVER), at("127.0.0.3")]);
    expect(ok.status).toBe(200);
    for (const host of ["127.0.0.1", "[::ffff:127.0.0.1]", "2130706433"]) {
      const tunnel = await rawExchange(
        s.proxyPort,
        `CONNECT ${host}:${s.adminPort} HTTP/1.1\r\nHost: ${host}:${s.adminPort}\r\nProxy-Authorization: ${basic("rover", ROVER)}\r\n\r\n`,
        1000,
      );
      expect(tunnel.reply, host).toMatch(/^HTTP\/1\.1 403 /);
    }
    const plain = await curl([...as("rover", ROVER), `http://127.0.0.1:${s.adminPort}/api/status`]);
    expect(plain.status).toBe(403);
    await s.managed.log.flush();
    const log = await s.api("GET", `/api/log?agent=rover&decision=denied`);
    expect(log.json.records.some((r: { reason: string }) => /shield's own endpoint/.test(r.reason))).toBe(
      true,
    );
  });
});

describe("status, agents, log, metrics", () => {
  it("counts decisions and traffic per agent, and names no secret", async () => {
    const before = (await s.api("GET", "/api/status")).json.decisions;
    const ok = await curl([...as("scout", SCOUT), at("web.test", "/big?n=5000")]);
    expect(ok.status).toBe(200);
    const denied = await curl([...as("scout", SCOUT), at("later.test")]);
    expect(denied.status).toBe(403);
    const st = await until(async () => {
      const r = await s.api("GET", "/api/status");
      return r.json.decisions.denied > before.denied ? r : undefined;
    }, "status counts");
    expect(st.json).toMatchObject({
      schema: "clawguard.shield-status/v1",
      version: expect.any(String),
      uptimeSeconds: expect.any(Number),
      openTunnels: 0,
      modes: { global: "enforce", fleets: { acme: null }, agents: { scout: "enforce", auditor: "audit" } },
    });
    expect(st.json.decisions.allowed).toBe(before.allowed + 1);
    const agents = (await s.api("GET", "/api/agents")).json.agents as Array<Record<string, unknown>>;
    const scout = agents.find((a) => a.id === "scout")!;
    expect(scout).toMatchObject({ fleet: "acme", tier: "crew", mode: "enforce", openTunnels: 0 });
    expect(scout.requests).toBeGreaterThanOrEqual(2);
    expect(scout.bytesDown as number).toBeGreaterThanOrEqual(5000);
    expect(Date.now() - (scout.lastSeen as number)).toBeLessThan(5000);
    const all = JSON.stringify([st.json, agents, (await s.api("GET", "/api/rules")).json]);
    for (const secret of [SCOUT, sha256(SCOUT), ADMIN_TOKEN, sha256(ADMIN_TOKEN)])
      expect(all).not.toContain(secret);
  });

  it("queries the audit log with filters and refuses bad ones with the field named", async () => {
    await curl([...as("scout", SCOUT), at("later.test")]);
    await s.managed.log.flush();
    const r = await until(async () => {
      const x = await s.api(
        "GET",
        `/api/log?agent=scout&decision=denied&host=later.test&since=${Date.now() - 60_000}&limit=5`,
      );
      return x.json.records.length > 0 ? x : undefined;
    }, "log records");
    expect(
      r.json.records.every(
        (x: { agent: string; decision: string }) => x.agent === "scout" && x.decision === "denied",
      ),
    ).toBe(true);
    for (const [q, field] of [
      ["limit=abc", "limit"],
      ["limit=0", "limit"],
      ["decision=maybe", "decision"],
      ["since=yesterday", "since"],
      ["colour=red", "colour"],
    ]) {
      const bad = await s.api("GET", `/api/log?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.json.field).toBe(field);
    }
  });

  it("exposes Prometheus metrics: decisions, bytes, tunnels, latency and the log writer", async () => {
    const text = (await s.api("GET", "/metrics")).text;
    expect(text).toMatch(/clawguard_shield_decisions_total\{decision="allowed"\} [1-9]/);
    expect(text).toMatch(/clawguard_shield_decisions_total\{decision="denied"\} [1-9]/);
    expect(text).toMatch(/clawguard_shield_bytes_total\{direction="down"\} [1-9]/);
    expect(text).toMatch(/clawguard_shield_open_tunnels 0/);
    expect(text).toMatch(/clawguard_shield_decision_seconds_count [1-9]/);
    expect(text).toMatch(/clawguard_shield_log_appended_total [1-9]/);
  });

  it("streams live decisions as server-sent events", async () => {
    const ctl = new AbortController();
    const res = await fetch(s.admin + "/api/events", {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: ctl.signal,
    });
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = "";
    const got = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += Buffer.from(value).toString();
        if (/"host":"free\.test"/.test(text)) return text;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await curl([...as("scout", SCOUT), at("free.test")]);
    const stream = await Promise.race([got, new Promise<string>((r) => setTimeout(() => r(text), 3000))]);
    ctl.abort();
    const line = stream.split("\n").find((l) => l.startsWith("data: ") && l.includes("free.test"))!;
    expect(JSON.parse(line.slice(6))).toMatchObject({
      agent: "scout",
      host: "free.test",
      decision: "denied",
    });
    expect(stream).toContain("event: decision");
  });
});

describe("modes", () => {
  it("applies an agent's lockdown to the next request, and inherit lifts it", async () => {
    expect((await curl([...as("scout", SCOUT), at("web.test")])).status).toBe(200);
    const r = await s.api("PUT", "/api/mode", { scope: "agent", id: "scout", mode: "lockdown" });
    expect(r.status).toBe(200);
    expect(r.json.modes.agents.scout).toBe("lockdown");
    expect((await curl([...as("scout", SCOUT), at("web.test")])).status).toBe(403);
    // Rover shares fleet and tier and is not affected.
    expect((await curl([...as("rover", ROVER), at("web.test")])).status).toBe(200);
    await s.api("PUT", "/api/mode", { scope: "agent", id: "scout", mode: null });
    expect((await curl([...as("scout", SCOUT), at("web.test")])).status).toBe(200);
  });

  it("closes an agent's open CONNECT tunnel within a second of its lockdown", async () => {
    const t = await openTunnel(s.proxyPort, `127.0.0.3:${web.port}`, "scout", SCOUT);
    expect(t.head).toMatch(/^HTTP\/1\.1 200/);
    expect(await t.get("127.0.0.3")).toMatch(/ok$/);
    const other = await openTunnel(s.proxyPort, `127.0.0.3:${web.port}`, "rover", ROVER);
    expect((await s.api("GET", "/api/status")).json.openTunnels).toBe(2);
    const switched = Date.now();
    const r = await s.api("PUT", "/api/mode", { scope: "agent", id: "scout", mode: "lockdown" });
    expect(r.json.tunnelsClosed).toBe(1);
    const closedAt = await Promise.race([
      t.closed,
      new Promise<number>((res) => setTimeout(() => res(-1), 1000)),
    ]);
    expect(closedAt).toBeGreaterThan(0);
    expect(closedAt - switched).toBeLessThan(1000);
    // Rover's tunnel is still open and still carries bytes.
    expect(await other.get("127.0.0.3")).toMatch(/ok$/);
    other.socket.destroy();
    await s.api("PUT", "/api/mode", { scope: "agent", id: "scout", mode: null });
  });

  it("closes a tunnel that audit mode let through when the agent is switched to enforce", async () => {
    const t = await openTunnel(s.proxyPort, `web.test:${web.port}`, "auditor", AUDITOR);
    expect(t.head).toMatch(/^HTTP\/1\.1 200/);
    expect(await t.get("web.test")).toMatch(/ok$/);
    const r = await s.api("PUT", "/api/mode", { scope: "agent", id: "auditor", mode: "enforce" });
    // The agent's own mode is audit in the file; the API's enforce replaces it.
    expect(r.json.modes.agents.auditor).toBe("enforce");
    const closedAt = await Promise.race([
      t.closed,
      new Promise<number>((res) => setTimeout(() => res(-1), 1000)),
    ]);
    expect(closedAt).toBeGreaterThan(0);
    const again = await rawExchange(
      s.proxyPort,
      `CONNECT web.test:${web.port} HTTP/1.1\r\nHost: web.test\r\nProxy-Authorization: ${basic("auditor", AUDITOR)}\r\n\r\n`,
      1000,
    );
    expect(again.reply).toMatch(/^HTTP\/1\.1 403/);
    await s.api("PUT", "/api/mode", { scope: "agent", id: "auditor", mode: null });
  });

  it(
    "shows a long download as in flight, not as a tunnel, and a lockdown cuts it",
    { timeout: 60_000 },
    async () => {
      const download = curl(
        [...as("scout", SCOUT), "--limit-rate", "200k", at("web.test", "/big?n=50000000")],
        20_000,
      );
      const scout = await until(async () => {
        const agents = (await s.api("GET", "/api/agents")).json.agents as Array<Record<string, number>>;
        const a = agents.find((x) => (x.id as unknown) === "scout");
        return a && a.httpInFlight === 1 ? a : undefined;
      }, "the download in flight");
      expect(scout.openTunnels).toBe(0);
      expect((await s.api("GET", "/api/status")).json.openTunnels).toBe(0);
      const r = await s.api("PUT", "/api/mode", { scope: "agent", id: "scout", mode: "lockdown" });
      expect(r.json.tunnelsClosed).toBe(1);
      const done = await download;
      expect(done.code).not.toBe(0);
      await s.api("PUT", "/api/mode", { scope: "agent", id: "scout", mode: null });
    },
  );

  it("switches a fleet and the whole shield", async () => {
    const t = await openTunnel(s.proxyPort, `127.0.0.3:${web.port}`, "rover", ROVER);
    const fleet = await s.api("PUT", "/api/mode", { scope: "fleet", id: "acme", mode: "lockdown" });
    expect(fleet.json.modes.fleets.acme).toBe("lockdown");
    expect(
      await Promise.race([t.closed, new Promise<number>((res) => setTimeout(() => res(-1), 1000))]),
    ).toBeGreaterThan(0);
    expect((await curl([...as("scout", SCOUT), at("web.test")])).status).toBe(403);
    // The auditor is in no fleet.
    expect((await curl([...as("auditor", AUDITOR), at("web.test")])).status).toBe(200);
    await s.api("PUT", "/api/mode", { scope: "fleet", id: "acme", mode: null });
    await s.api("PUT", "/api/mode", { scope: "global", mode: "lockdown" });
    expect((await curl([...as("auditor", AUDITOR), at("web.test")])).status).toBe(403);
    const st = await s.api("GET", "/api/status");
    expect(st.json.modes.global).toBe("lockdown");
    await s.api("PUT", "/api/mode", { scope: "global", mode: null });
    expect((await curl([...as("scout", SCOUT), at("web.test")])).status).toBe(200);
  });

  it("refuses bad mode requests with the field named", async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ scope: "agent", id: "scout", mode: "party" }, 400, "mode"],
      [{ scope: "planet", mode: "audit" }, 400, "scope"],
      [{ scope: "agent", mode: "audit" }, 400, "id"],
      [{ scope: "agent", id: "ghost", mode: "audit" }, 404, "id"],
      [{ scope: "fleet", id: "nope", mode: "audit" }, 404, "id"],
      [{ scope: "global", mode: "audit", extra: 1 }, 400, "extra"],
      ["{not json", 400, "body"],
      ["", 400, "body"],
      [{ scope: "global", mode: "audit", pad: "x".repeat(70_000) }, 413, "body"],
    ];
    for (const [b, status, field] of cases) {
      const r = await s.api("PUT", "/api/mode", b);
      expect(r.status, JSON.stringify(b).slice(0, 60)).toBe(status);
      expect(r.json.field).toBe(field);
      expect(r.json.error).toEqual(expect.any(String));
    }
    expect((await s.api("GET", "/api/status")).json.modes.global).toBe("enforce");
  });
});

describe("rules", () => {
  it("adds a rule, saves it atomically with the file's comments, and applies it at once", async () => {
    expect((await curl([...as("scout", SCOUT), at("later.test")])).status).toBe(403);
    const r = await s.api("POST", "/api/rules", {
      level: "agent",
      name: "scout",
      verdict: "allow",
      rule: "later.test",
    });
    expect(r.status).toBe(201);
    expect((await curl([...as("scout", SCOUT), at("later.test")])).status).toBe(200);
    const text = readFileSync(s.file, "utf8");
    expect(text).toContain("# scout's own rules");
    expect(text).toContain("# the crew may reach the test web server");
    expect(text).toMatch(/allow:\n\s+- later\.test|allow: \[ later\.test \]|allow: \[later\.test\]/);
    expect(readdirSync(s.dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const listed = (await s.api("GET", "/api/rules")).json.levels;
    expect(listed).toContainEqual({ level: "agent", name: "scout", allow: ["later.test"], deny: [] });
    // A rule listed is a rule a restart keeps: the file parses to the same rules.
    const reread = await loadShieldConfig(s.file);
    expect(reread.agents.find((a) => a.id === "scout")?.allow).toEqual(["later.test"]);
  });

  it("removes a rule and closes tunnels it allowed", async () => {
    const t = await openTunnel(s.proxyPort, `later.test:${web.port}`, "scout", SCOUT);
    expect(t.head).toMatch(/^HTTP\/1\.1 200/);
    const r = await s.api("DELETE", "/api/rules", {
      level: "agent",
      name: "scout",
      verdict: "allow",
      rule: "later.test",
    });
    expect(r.status).toBe(200);
    expect(r.json.tunnelsClosed).toBe(1);
    expect(
      await Promise.race([t.closed, new Promise<number>((res) => setTimeout(() => res(-1), 1000))]),
    ).toBeGreaterThan(0);
    expect((await curl([...as("scout", SCOUT), at("later.test")])).status).toBe(403);
    expect(readFileSync(s.file, "utf8")).not.toContain("later.test");
  });

  it("adds a global deny that beats the tier's allow", async () => {
    const r = await s.api("POST", "/api/rules", { level: "global", verdict: "deny", rule: "web.test" });
    expect(r.status).toBe(201);
    expect((await curl([...as("scout", SCOUT), at("web.test")])).status).toBe(403);
    await s.api("DELETE", "/api/rules", { level: "global", verdict: "deny", rule: "web.test" });
    expect((await curl([...as("scout", SCOUT), at("web.test")])).status).toBe(200);
  });

  it("refuses bad rule edits and leaves the file alone", async () => {
    const before = readFileSync(s.file, "utf8");
    const cases: Array<[string, unknown, number, string]> = [
      ["POST", { level: "global", verdict: "allow", rule: "http://x/" }, 400, "rule"],
      ["POST", { level: "tier", name: "crew", verdict: "allow", rule: "web.test" }, 409, "rule"],
      ["POST", { level: "tier", name: "nope", verdict: "allow", rule: "a.test" }, 404, "name"],
      ["POST", { level: "agent", verdict: "allow", rule: "a.test" }, 400, "name"],
      ["POST", { level: "planet", verdict: "allow", rule: "a.test" }, 400, "level"],
      ["POST", { level: "global", verdict: "maybe", rule: "a.test" }, 400, "verdict"],
      ["DELETE", { level: "global", verdict: "allow", rule: "never.test" }, 404, "rule"],
    ];
    for (const [method, b, status, field] of cases) {
      const r = await s.api(method, "/api/rules", b);
      expect(r.status, JSON.stringify(b)).toBe(status);
      expect(r.json.field).toBe(field);
    }
    expect(readFileSync(s.file, "utf8")).toBe(before);
  });
});

describe("asking the running shield", () => {
  const check = (b: unknown) => s.api("POST", "/api/check", b);

  it("answers as the shield then logs, for allowed, denied and the admin port", async () => {
    const destinations = [at("web.test", "/a"), at("later.test", "/b"), `127.0.0.1:${s.adminPort}`];
    const r = await check({ agent: "scout", destinations, resolve: true });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      schema: "clawguard.shield-check/v1",
      live: true,
      agent: { id: "scout", fleet: "acme", tier: "crew" },
      mode: "enforce",
      resolved: true,
    });
    const [web, later, admin] = r.json.results;
    expect(web).toMatchObject({ decision: "allowed", rule: "tier:crew allow web.test", dial: "127.0.0.3" });
    expect(later).toMatchObject({ decision: "denied", rule: null, host: "later.test", path: "/b" });
    expect(admin).toMatchObject({ decision: "denied", host: "127.0.0.1", port: s.adminPort });
    // The same requests from scout: the log's records say what the check said.
    const since = Date.now() - 1;
    await curl([...as("scout", SCOUT), destinations[0]!]);
    await curl([...as("scout", SCOUT), destinations[1]!]);
    await curl([...as("scout", SCOUT), "-p", `http://${destinations[2]}/`]);
    await s.managed.log.flush();
    const logged = await until(async () => {
      const x = await s.api("GET", `/api/log?agent=scout&since=${since}&limit=10`);
      return x.json.records.length >= 3 ? x.json.records.reverse() : undefined;
    }, "three records");
    for (const [i, answer] of [web, later, admin].entries()) {
      const { decision, rule, reason } = logged[i];
      expect({ decision, rule, reason }, answer.destination).toEqual({
        decision: answer.decision,
        rule: answer.rule,
        reason: answer.reason,
      });
    }
  });

  it("follows mode switches and rule edits at once; logs the changes, and counts nothing", async () => {
    const ask = async () => (await check({ agent: "scout", destinations: ["https://new.test"] })).json;
    const seen = (await s.api("GET", "/api/agents")).json.agents.find(
      (a: { id: string }) => a.id === "scout",
    );
    const before = s.managed.log.stats();
    expect((await ask()).results[0].decision).toBe("denied");
    await s.api("POST", "/api/rules", {
      level: "agent",
      name: "scout",
      verdict: "allow",
      rule: "new.test:443",
    });
    expect((await ask()).results[0]).toMatchObject({
      decision: "allowed",
      rule: "agent:scout allow new.test:443",
    });
    await s.api("PUT", "/api/mode", { scope: "fleet", id: "acme", mode: "lockdown" });
    const locked = await ask();
    expect(locked.mode).toBe("lockdown");
    expect(locked.results[0].decision).toBe("denied");
    await s.api("PUT", "/api/mode", { scope: "fleet", id: "acme", mode: null });
    await s.api("DELETE", "/api/rules", {
      level: "agent",
      name: "scout",
      verdict: "allow",
      rule: "new.test:443",
    });
    expect((await ask()).results[0].decision).toBe("denied");
    await s.managed.log.flush();
    // The four changes are logged (by the admin); the checks between them are not.
    expect(s.managed.log.stats().appended).toBe(before.appended + 4);
    const changes = s.managed.log.query({ operator: "admin", order: "desc", limit: 4 });
    expect(changes.map((r) => r.method).reverse()).toEqual(["RULE+", "MODE", "MODE", "RULE-"]);
    const after = (await s.api("GET", "/api/agents")).json.agents.find(
      (a: { id: string }) => a.id === "scout",
    );
    expect(after).toMatchObject({ requests: seen.requests, lastSeen: seen.lastSeen });
  });

  it("finds an agent by source address, and judges names by name unless asked to resolve", async () => {
    const bySource = await check({ source: "127.0.0.1", destinations: ["web.test"] });
    expect(bySource.status).toBe(404);
    expect(bySource.json.field).toBe("source");
    const names = await check({ agent: "rover", destinations: ["web.test", "http://[::ffff:127.0.0.3]/"] });
    expect(names.json.resolved).toBe(false);
    expect(names.json.results[0]).toMatchObject({ decision: "allowed", dial: null, addresses: null });
    // An IP literal is judged by address without a lookup: rover's 127.0.0.0/8 opens it.
    expect(names.json.results[1]).toMatchObject({
      decision: "allowed",
      host: "127.0.0.3",
      dial: "127.0.0.3",
    });
  });

  it("looks names up two at a time over all checks, and answers in the order asked", async () => {
    let inFlight = 0;
    let most = 0;
    const slow: Resolver = async (host) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight -= 1;
      return resolver.resolve(host);
    };
    const other = await startAdminShield(body(), { resolver: slow });
    try {
      const names = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? "web.test" : `n${i}.test`));
      const answers = await Promise.all(
        [0, 1].map(() =>
          other.api("POST", "/api/check", { agent: "scout", destinations: names, resolve: true }),
        ),
      );
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.json.results.map((r: { destination: string }) => r.destination)).toEqual(names);
        expect(a.json.results[0]).toMatchObject({ decision: "allowed", dial: "127.0.0.3" });
        expect(a.json.results[1]).toMatchObject({ decision: "denied" });
      }
      expect(most).toBe(2);
    } finally {
      await other.close();
    }
  });

  it("asks every agent at once", async () => {
    const r = await check({ all: true, destinations: [at("web.test"), "https://later.test"], resolve: true });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      schema: "clawguard.shield-check/v1",
      live: true,
      all: true,
      resolved: true,
    });
    const byId = Object.fromEntries(
      r.json.agents.map((a: { agent: { id: string }; results: Array<{ decision: string }> }) => [
        a.agent.id,
        a.results.map((x) => x.decision),
      ]),
    );
    // Scout and rover by the crew's name rule; the auditor has only a CIDR, so its denial is audited.
    expect(byId).toEqual({
      scout: ["allowed", "denied"],
      rover: ["allowed", "denied"],
      auditor: ["audited", "audited"],
    });
  });

  it("keeps serving agents while it asks a large fleet", async () => {
    const AGENTS = 2000;
    const fleet = Array.from(
      { length: AGENTS },
      (_, i) => `  - { id: a${i}, sources: [10.${i >> 8}.${i & 255}.1/32], allow: [web.test] }`,
    );
    const order: string[] = [];
    let lookups = 0;
    let request: Promise<unknown> | null = null;
    // One lookup of web.test per agent: the first starts an agent's request through the proxy,
    // the last comes as the check ends. Checks that need no lookup run in between.
    const watching: Resolver = async (host) => {
      lookups += 1;
      if (lookups === 1)
        request = rawExchange(
          big.proxyPort,
          `GET ${at("web.test")} HTTP/1.1\r\nHost: web.test:${web.port}\r\n` +
            `Proxy-Authorization: ${basic("scout", SCOUT)}\r\nConnection: close\r\n\r\n`,
        ).then((r) => order.push(r.reply.startsWith("HTTP/1.1 200") ? "request" : `request: ${r.reply}`));
      if (lookups === AGENTS + 1) order.push("check");
      return resolver.resolve(host);
    };
    const big = await startAdminShield(
      `agents:\n  - { id: scout, token_sha256: "${sha256(SCOUT)}", allow: [web.test, 127.0.0.3/32] }\n${fleet.join("\n")}\n`,
      { resolver: watching },
    );
    try {
      const names = ["web.test", ...Array.from({ length: 63 }, (_, i) => `h${i}.test`)];
      const r = await big.api("POST", "/api/check", { all: true, destinations: names, resolve: true });
      await request;
      expect(r.status).toBe(200);
      expect(r.json.agents).toHaveLength(AGENTS + 1);
      expect(order).toEqual(["request", "check"]);
    } finally {
      await big.close();
    }
  });

  it("refuses bad questions with the field named", async () => {
    const many = Array.from({ length: 65 }, (_, i) => `h${i}.test`);
    const cases: Array<[unknown, number, string]> = [
      [{ destinations: ["web.test"] }, 400, "agent"],
      [{ agent: "scout", source: "127.0.0.1", destinations: ["web.test"] }, 400, "agent"],
      [{ agent: "scout", all: true, destinations: ["web.test"] }, 400, "agent"],
      [{ all: false, destinations: ["web.test"] }, 400, "all"],
      [{ agent: "nobody", destinations: ["web.test"] }, 404, "agent"],
      [{ agent: "scout", destinations: [] }, 400, "destinations"],
      [{ agent: "scout", destinations: many }, 400, "destinations"],
      [{ agent: "scout", destinations: ["web.test", "ftp://web.test/"] }, 400, "destinations.1"],
      [{ agent: "scout", destinations: ["web.test"], resolve: "yes" }, 400, "resolve"],
      [{ agent: "scout", destinations: ["web.test"], colour: 1 }, 400, "colour"],
    ];
    for (const [b, status, field] of cases) {
      const r = await check(b);
      expect(r.status, JSON.stringify(b).slice(0, 80)).toBe(status);
      expect(r.json.field, JSON.stringify(b).slice(0, 80)).toBe(field);
    }
    expect((await s.api("GET", "/api/check")).status).toBe(405);
  });

  it("runs a policy tests file against the running policy, naming the line of each expectation that fails", async () => {
    const tests = [
      "- agent: scout",
      `  allowed: ["${at("web.test")}"]`,
      "  denied: [pastebin.com, later.test]",
      "- all: true",
      `  denied: ["${at("web.test")}"]`,
      "",
    ].join("\n");
    const before = (await s.api("GET", "/api/status")).json.decisions;
    const r = await s.api("POST", "/api/check-tests", { tests });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ schema: "clawguard.shield-check-tests/v1", live: true, cases: 2 });
    // scout x 3, then every agent (scout, rover, auditor) x 1: scout and rover may reach web.test.
    expect(r.json.outcomes).toHaveLength(6);
    const failed = r.json.outcomes.filter((o: { holds: boolean }) => !o.holds);
    expect(
      failed.map((o: { line: number; agent: string; decision: string }) => [o.line, o.agent, o.decision]),
    ).toEqual([
      [4, "scout", "allowed"],
      [4, "rover", "allowed"],
      [4, "auditor", "audited"],
    ]);
    expect(r.json.failed).toBe(3);
    expect((await s.api("GET", "/api/status")).json.decisions).toEqual(before);

    const bad: Array<[string, RegExp]> = [
      ["- agent: scout\n  allowed: [ftp://x.test]\n", /^tests:2: \[0\]\.allowed\[0\]: /],
      ["- agent: scout\n  alowed: [x.test]\n", /^tests:2: \[0\]\.alowed: unknown key/],
      ["- agent: nobody\n  denied: [x.test]\n", /^tests:1: no agent "nobody"/],
      ["agent: scout\n", /^tests:1: expected a list of cases/],
    ];
    for (const [text, message] of bad) {
      const x = await s.api("POST", "/api/check-tests", { tests: text });
      expect(x.status, text).toBe(400);
      expect(x.json, text).toMatchObject({ field: "tests", error: expect.stringMatching(message) });
    }
    expect((await s.api("POST", "/api/check-tests", { tests: "" })).json.field).toBe("tests");
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
