/**
 * The proxy's corpus of names and address spellings, sent through gateway mode's transparent
 * ports: a plain request decided by its Host, a TLS connection by its server name. Each must
 * get the decision, rule and reason the admin API's check gives the same destination, since
 * both are the one admission path.
 */
import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogRecord } from "../../../src/shield/types.js";
import { startAdminShield, type AdminShield } from "../admin-harness.js";
import { TableResolver, Upstream, v4, v6 } from "../proxy-harness.js";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const NAMES = [
  "a.ok.test",
  "B.OK.TEST.",
  "bad.ok.test",
  "meta.ok.test",
  "zero.ok.test",
  "zero6.ok.test",
  "mixed.ok.test",
  "gone.ok.test",
  "other.test",
];
const LITERALS = ["127.0.0.3", "0x7f000003", "[::ffff:127.0.0.3]", "0.0.0.0", "[::]", "169.254.169.254"];

let s: AdminShield;
let web: Upstream;
const ports = { http: 0, https: 0, dns: 0 };
const records: LogRecord[] = [];

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  for (const k of ["http", "https", "dns"] as const) ports[k] = await freePort();
  s = await startAdminShield(
    `gateway:
  networks: [127.0.0.0/8]
  listen: [127.0.0.1]
  transparent: { http: ${web.port}, https: ${web.port + 1} }
  ports: { http: ${ports.http}, https: ${ports.https}, dns: ${ports.dns} }
tiers:
  crew: { allow: ["*.ok.test", 127.0.0.3/32], deny: [bad.ok.test] }
agents:
  - { id: scout, tier: crew, sources: [127.0.0.1/32] }
`,
    {
      watch: false,
      resolver: new TableResolver({
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
        "other.test": v4("127.0.0.3"),
      }).resolve,
    },
  );
  s.managed.control.events.on("decision", (r: LogRecord) => records.push(r));
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

type Answer = Pick<LogRecord, "decision" | "rule" | "reason">;
const answer = (x: Answer): Answer => ({
  decision: x.decision,
  rule: x.rule,
  // A dial that failed is past admission: no check can know it.
  reason: x.reason.replace(/; connect \S+: [A-Z]+$/, ""),
});

async function nextRecord(before: number): Promise<Answer> {
  await expect.poll(() => records.length, { timeout: 5000 }).toBeGreaterThan(before);
  return answer(records[before]!);
}

async function overHttp(host: string): Promise<Answer> {
  const before = records.length;
  await new Promise<void>((resolve) => {
    const c = net.connect(ports.http, "127.0.0.1");
    c.on("error", () => undefined);
    c.on("close", () => resolve());
    c.on("data", () => undefined);
    c.write(`GET /c HTTP/1.1\r\nHost: ${host}:${web.port}\r\nConnection: close\r\n\r\n`);
  });
  return nextRecord(before);
}

async function overTls(name: string): Promise<Answer> {
  const before = records.length;
  await new Promise<void>((resolve) => {
    const c = tls.connect({
      host: "127.0.0.1",
      port: ports.https,
      servername: name,
      rejectUnauthorized: false,
    });
    c.on("error", () => undefined);
    c.on("secureConnect", () => c.destroy());
    c.on("close", () => resolve());
  });
  return nextRecord(before);
}

async function check(destination: string): Promise<Answer> {
  const r = await s.api("POST", "/api/check", { agent: "scout", destinations: [destination], resolve: true });
  return answer(r.json.results[0]);
}

describe("the corpus through the transparent ports", () => {
  it("gets the API check's answer for every Host and every server name", async () => {
    const mismatches: string[] = [];
    for (const host of [...NAMES, ...LITERALS]) {
      const got = await overHttp(host);
      const want = await check(`http://${host}:${web.port}/c`);
      if (JSON.stringify(got) !== JSON.stringify(want))
        mismatches.push(`http ${host}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    }
    for (const name of NAMES) {
      const got = await overTls(name.replace(/\.$/, ""));
      const want = await check(`${name.replace(/\.$/, "")}:${web.port + 1}`);
      if (JSON.stringify(got) !== JSON.stringify(want))
        mismatches.push(`tls ${name}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    }
    expect(mismatches).toEqual([]);
    expect(new Set(records.map((r) => r.decision))).toEqual(new Set(["allowed", "denied"]));
  });
});
