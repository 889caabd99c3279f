/**
 * An agent whose rules cover every address tries the shield's own ports through "this host":
 * Linux connects 0.0.0.0 to the local host and :: to ::1, so these spellings would reach the
 * admin API and the proxy itself if the shield dialled them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";
import { basic, curl, rawExchange, sha256, TableResolver, Upstream, v4, v6 } from "./proxy-harness.js";

const SECRET = "ops-secret-for-this-host-tests";

const resolver = new TableResolver({
  "zero.test": v4("0.0.0.0"),
  "zero6.test": v6("::"),
  "zeromapped.test": v6("::ffff:0.0.0.0"),
});

let s: AdminShield;
let web: Upstream;
const ops = ["--proxy-user", `ops:${SECRET}`];

beforeAll(async () => {
  web = new Upstream("127.0.0.1");
  await web.start();
  s = await startAdminShield(
    `agents:\n  - { id: ops, token_sha256: "${sha256(SECRET)}", allow: ["*", 0.0.0.0/0, "::/0"] }\n`,
    { resolver: resolver.resolve },
  );
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

/** Every spelling of this host an agent might try, literal or by a name that resolves to it. */
const SPELLINGS = [
  "0.0.0.0",
  "0",
  "0.0.0.7",
  "[::ffff:0.0.0.0]",
  "[::]",
  "[0:0:0:0:0:0:0:0]",
  "zero.test",
  "zero6.test",
  "zeromapped.test",
];

describe("this host through the proxy", () => {
  it("the control: the agent reaches loopback itself, as its allow-all CIDR says", async () => {
    const r = await curl(["-x", s.proxyUrl, ...ops, `http://127.0.0.1:${web.port}/`]);
    expect(r.status).toBe(200);
  });

  it("refuses plain HTTP to the admin API, the proxy and any port, in every spelling", async () => {
    const before = web.connections;
    for (const host of SPELLINGS) {
      for (const port of [s.adminPort, s.proxyPort, web.port]) {
        const r = await curl(["-x", s.proxyUrl, ...ops, `http://${host}:${port}/api/status`]);
        expect(r.status, `${host}:${port}`).toBe(403);
      }
    }
    expect(web.connections).toBe(before);
  });

  it("refuses CONNECT to them too, so no tunnel leads back into the shield", async () => {
    for (const host of SPELLINGS) {
      for (const port of [s.adminPort, s.proxyPort]) {
        const target = `${host}:${port}`;
        const c = await rawExchange(
          s.proxyPort,
          `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${basic("ops", SECRET)}\r\n\r\n`,
          500,
        );
        expect(c.reply, target).toMatch(/^HTTP\/1.1 403 /);
      }
    }
  });

  it("logs each refusal with the reason, and dials nothing", async () => {
    await s.managed.log.flush();
    const r = await s.api("GET", "/api/log?limit=500");
    const refused = (
      r.json.records as Array<{
        host: string;
        decision: string;
        reason: string;
        upstreamAddress: string | null;
      }>
    ).filter((x) => x.host === "0.0.0.0" || x.host === "::" || /^zero/.test(x.host) || x.host === "0.0.0.7");
    expect(refused.length).toBeGreaterThan(30);
    for (const x of refused) {
      expect(x.decision).toBe("denied");
      expect(x.upstreamAddress).toBeNull();
      expect(x.reason).toMatch(/this host|shield's own endpoint/);
    }
  });

  it("shield check answers as the proxy does, and the linter names the rule", async () => {
    const r = await cli(
      "shield",
      "check",
      "--config",
      s.file,
      "--agent",
      "ops",
      "--json",
      "http://0.0.0.0/",
      "https://[::]/",
      "0:8080",
    );
    const json = JSON.parse(r.out);
    for (const result of json.results) {
      expect(result.decision, result.destination).toBe("denied");
      expect(result.reason).toMatch(/this host/);
    }
    const lint = await cli("shield", "check", "--config", s.file);
    expect(lint.out).toMatch(/covers 0\.0\.0\.0\/8 \(this host\)/);
    expect(lint.out).toMatch(/covers :: \(this host\)/);
  });
});
