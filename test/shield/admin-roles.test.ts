/**
 * Named operators: every admin API endpoint asked by every role, in scope and out of it, with
 * the answer each must get; and what a scoped operator reads (lists, the log, events, metrics)
 * names nothing of the fleets it does not see.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { ADMIN_TOKEN, freePort, startAdminShield, type AdminShield } from "./admin-harness.js";
import { curl, sha256, TableResolver, Upstream, v4 } from "./proxy-harness.js";
import { STATUS_SCHEMA } from "../../src/shield/wireguard/status.js";
import { generateKeyPair } from "../../src/shield/wireguard/keys.js";

const TOKENS = {
  root: "token-of-the-root-operator-0001",
  acmeOp: "token-of-acme-operator-00000002",
  acmeView: "token-of-acme-viewer-0000000003",
  allView: "token-of-all-viewer-00000000004",
};
const AGENT = { a1: "a1-agent-token", u1: "u1-agent-token", lone: "lone-agent-token" };

let s: AdminShield;
let web: Upstream;

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  s = await startAdminShield(
    `tiers:
  crew: { allow: ["*.test", 127.0.0.3/32] }
  umbrella-crew: { allow: ["*.test", 127.0.0.3/32] }
fleets:
  acme: {}
  umbrella: {}
wireguard:
  interface: cgroles0
  listen_port: 51820
  address: [127.0.0.1/24]
  private_key_file: wg.key
  status_file: wg-status.json
  endpoint: 203.0.113.5:51820
agents:
  - { id: a1, fleet: acme, tier: crew, token_sha256: "${sha256(AGENT.a1)}" }
  - { id: u1, fleet: umbrella, tier: umbrella-crew, token_sha256: "${sha256(AGENT.u1)}", budget: { requests: 1 } }
  - { id: lone, token_sha256: "${sha256(AGENT.lone)}", allow: ["*.test", 127.0.0.3/32] }
operators:
  - { name: root, role: admin, token_sha256: "${sha256(TOKENS.root)}" }
  - { name: acme-op, role: operator, fleets: [acme], token_sha256: "${sha256(TOKENS.acmeOp)}" }
  - { name: acme-view, role: viewer, fleets: [acme], token_sha256: "${sha256(TOKENS.acmeView)}" }
  - { name: all-view, role: viewer, token_sha256: "${sha256(TOKENS.allView)}" }
`,
    {
      resolver: new TableResolver({ "web.test": v4("127.0.0.3") }).resolve,
      // Join codes name the proxy's port: it must be a real one.
      listen: `127.0.0.1:${await freePort()}`,
    },
  );
  // The shield's WireGuard public key, as root's sync daemon publishes it, for join codes.
  writeFileSync(
    path.join(s.dir, "wg-status.json"),
    JSON.stringify({
      schema: STATUS_SCHEMA,
      interface: "cgroles0",
      publicKey: generateKeyPair().publicKey,
      listenPort: 51820,
      at: Date.now(),
      peers: [],
    }),
  );
  // Traffic from every agent, some of it refused, so that lists, logs and metrics have names in them.
  for (const [id, token] of Object.entries(AGENT)) {
    await curl(["-x", s.proxyUrl, "--proxy-user", `${id}:${token}`, `http://web.test:${web.port}/`]);
    // u1's budget allows one request: the second is an overrun, a metric labelled with it.
    await curl(["-x", s.proxyUrl, "--proxy-user", `${id}:${token}`, `http://web.test:${web.port}/`]);
    await curl(["-x", s.proxyUrl, "--proxy-user", `${id}:${token}`, `http://denied.example:${web.port}/`]);
  }
  await s.managed.log.flush();
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

type Who = "admin" | keyof typeof TOKENS;
const TOKEN_OF: Record<Who, string> = { admin: ADMIN_TOKEN, ...TOKENS };
const ask = (who: Who, method: string, p: string, body?: unknown) => s.api(method, p, body, TOKEN_OF[who]);

/** Expected status per asker, in the order admin, root, acmeOp, acmeView, allView. */
type Row = [method: string, path: string, body: unknown, expected: [number, number, number, number, number]];
const WHO: Who[] = ["admin", "root", "acmeOp", "acmeView", "allView"];
const rule = (level: string, name: string | undefined) => ({
  level,
  ...(name ? { name } : {}),
  verdict: "allow",
  rule: "added.test",
});

const MATRIX: Row[] = [
  ["GET", "/api/status", undefined, [200, 200, 200, 200, 200]],
  ["GET", "/api/agents", undefined, [200, 200, 200, 200, 200]],
  ["GET", "/api/rules", undefined, [200, 200, 200, 200, 200]],
  ["GET", "/api/log", undefined, [200, 200, 200, 200, 200]],
  ["GET", "/api/traffic", undefined, [200, 200, 200, 200, 200]],
  // The file holds every fleet's policy: reading it again is for admins.
  ["POST", "/api/reload", undefined, [200, 200, 403, 403, 403]],
  ["GET", "/metrics", undefined, [200, 200, 200, 200, 200]],
  ["POST", "/api/check", { agent: "a1", destinations: ["web.test"] }, [200, 200, 200, 200, 200]],
  ["POST", "/api/check", { agent: "u1", destinations: ["web.test"] }, [200, 200, 404, 404, 200]],
  ["POST", "/api/check", { agent: "lone", destinations: ["web.test"] }, [200, 200, 404, 404, 200]],
  ["POST", "/api/check-tests", { tests: "- agent: u1\n  allowed: [web.test]\n" }, [200, 200, 400, 400, 200]],
  ["PUT", "/api/mode", { scope: "global", mode: "enforce" }, [200, 200, 403, 403, 403]],
  ["PUT", "/api/mode", { scope: "fleet", id: "acme", mode: null }, [200, 200, 200, 403, 403]],
  ["PUT", "/api/mode", { scope: "fleet", id: "umbrella", mode: null }, [200, 200, 404, 403, 403]],
  ["PUT", "/api/mode", { scope: "agent", id: "a1", mode: null }, [200, 200, 200, 403, 403]],
  ["PUT", "/api/mode", { scope: "agent", id: "u1", mode: null }, [200, 200, 404, 403, 403]],
  ["PUT", "/api/mode", { scope: "agent", id: "lone", mode: null }, [200, 200, 404, 403, 403]],
  ["GET", "/api/operators", undefined, [200, 200, 403, 403, 403]],
  ["GET", "/api/grants", undefined, [200, 200, 200, 200, 200]],
  // This shield has no SSH CA (409): scope and role are decided before that.
  ["POST", "/api/grants", { agent: "a1", key: "ssh-ed25519 AAAA", for: "1h" }, [409, 409, 409, 403, 403]],
  ["POST", "/api/grants", { agent: "u1", key: "ssh-ed25519 AAAA", for: "1h" }, [409, 409, 404, 403, 403]],
  ["POST", "/api/grants", { agent: "lone", key: "ssh-ed25519 AAAA", for: "1h" }, [409, 409, 404, 403, 403]],
  ["DELETE", "/api/grants", { serial: 1 }, [404, 404, 404, 403, 403]],
];

/** Rule edits come in pairs, so that every asker edits the same file: add, then remove. */
const EDITS: Array<[string, unknown, [number, number, number, number, number]]> = [
  ["fleet acme", rule("fleet", "acme"), [201, 201, 201, 403, 403]],
  ["agent a1", rule("agent", "a1"), [201, 201, 201, 403, 403]],
  ["fleet umbrella", rule("fleet", "umbrella"), [201, 201, 404, 403, 403]],
  ["agent u1", rule("agent", "u1"), [201, 201, 404, 403, 403]],
  ["tier crew", rule("tier", "crew"), [201, 201, 403, 403, 403]],
  ["global", rule("global", undefined), [201, 201, 403, 403, 403]],
];

/** Enrolments come in pairs too: enrol, then revoke (by root) whatever was enrolled. */
const ENROLS: Array<[string, unknown, [number, number, number, number, number]]> = [
  ["into acme", { id: "m1", fleet: "acme", tier: "crew" }, [201, 201, 201, 403, 403]],
  ["into umbrella", { id: "m1", fleet: "umbrella" }, [201, 201, 404, 403, 403]],
  ["into no fleet", { id: "m1" }, [201, 201, 400, 403, 403]],
  ["into a fleet that does not exist", { id: "m1", fleet: "nope" }, [404, 404, 404, 403, 403]],
];

/** Revocations of an agent root enrolled first (and removes, when the asker could not). */
const REVOKES: Array<[string, unknown, [number, number, number, number, number]]> = [
  ["in acme", { id: "r1", fleet: "acme" }, [200, 200, 200, 403, 403]],
  ["in umbrella", { id: "r1", fleet: "umbrella" }, [200, 200, 404, 403, 403]],
  ["in no fleet", { id: "r1" }, [200, 200, 404, 403, 403]],
];

describe("every endpoint, every role, in scope and out", () => {
  it.each(MATRIX)("%s %s %j", async (method, p, body, expected) => {
    const got: number[] = [];
    for (const who of WHO) got.push((await ask(who, method, p, body)).status);
    expect(got).toEqual(expected);
  });

  it.each(EDITS)("rule edit at %s", async (_what, body, expected) => {
    const got: number[] = [];
    for (const who of WHO) {
      const r = await ask(who, "POST", "/api/rules", body);
      got.push(r.status);
      if (r.status === 201) expect((await ask("root", "DELETE", "/api/rules", body)).status).toBe(200);
    }
    expect(got).toEqual(expected);
  });

  it.each(ENROLS)("enrolment %s", async (_what, body, expected) => {
    const got: number[] = [];
    for (const who of WHO) {
      const r = await ask(who, "POST", "/api/agents/enroll", body);
      got.push(r.status);
      if (r.status === 201)
        expect((await ask("root", "POST", "/api/agents/revoke", { id: "m1" })).status).toBe(200);
    }
    expect(got).toEqual(expected);
  });

  it.each(REVOKES)("revocation of an agent %s", async (_what, enrol, expected) => {
    const got: number[] = [];
    for (const who of WHO) {
      expect((await ask("root", "POST", "/api/agents/enroll", enrol)).status).toBe(201);
      const r = await ask(who, "POST", "/api/agents/revoke", { id: "r1" });
      got.push(r.status);
      if (r.status !== 200)
        expect((await ask("root", "POST", "/api/agents/revoke", { id: "r1" })).status).toBe(200);
    }
    expect(got).toEqual(expected);
    // An agent nobody enrolled is absent for everyone who may revoke.
    const none = [];
    for (const who of WHO) none.push((await ask(who, "POST", "/api/agents/revoke", { id: "ghost" })).status);
    expect(none).toEqual([404, 404, 404, 403, 403]);
  });

  it("refuses a token nobody has, and answers what a role lacks in words", async () => {
    expect((await s.api("GET", "/api/status", undefined, "not-a-token-of-anyone")).status).toBe(401);
    const r = await ask("acmeView", "PUT", "/api/mode", { scope: "fleet", id: "acme", mode: null });
    expect(r.json.error).toMatch(/acme-view is a viewer: PUT \/api\/mode needs an operator or an admin/);
  });
});

describe("a scoped operator sees nothing of the other fleets", () => {
  const OTHERS = /umbrella|\bu1\b|\blone\b/;

  it("in lists, rules, status, checks of every agent, the log and metrics", async () => {
    for (const who of ["acmeOp", "acmeView"] as const) {
      for (const p of [
        "/api/agents",
        "/api/rules",
        "/api/status",
        "/api/log?limit=1000",
        "/api/traffic",
        "/metrics",
      ]) {
        const r = await ask(who, "GET", p);
        expect(r.status).toBe(200);
        expect(r.text, `${who} ${p}`).not.toMatch(OTHERS);
      }
      const all = await ask(who, "POST", "/api/check", { all: true, destinations: ["web.test"] });
      expect(all.json.agents.map((a: { agent: { id: string } }) => a.agent.id)).toEqual(["a1"]);
      // An agent of another fleet is as absent as one that does not exist.
      const other = await ask(who, "POST", "/api/check", { agent: "u1", destinations: ["web.test"] });
      const none = await ask(who, "POST", "/api/check", { agent: "nobody", destinations: ["web.test"] });
      expect(other.json.error.replace("u1", "X")).toBe(none.json.error.replace("nobody", "X"));
    }
  });

  it("while an operator over every fleet sees them all", async () => {
    const traffic = await ask("allView", "GET", "/api/traffic");
    expect(traffic.text).toMatch(/\bu1\b/);
    expect(traffic.text).toMatch(/\blone\b/);
    const r = await ask("allView", "GET", "/api/agents");
    expect(r.json.agents.map((a: { id: string }) => a.id).sort()).toEqual(["a1", "lone", "u1"]);
    expect((await ask("allView", "GET", "/metrics")).text).toMatch(/scope="agent:u1"/);
    const log = await ask("acmeOp", "GET", "/api/log?limit=1000");
    expect(log.json.records.length).toBeGreaterThan(0);
    expect(new Set(log.json.records.map((x: { fleet: string }) => x.fleet))).toEqual(new Set(["acme"]));
  });
});
