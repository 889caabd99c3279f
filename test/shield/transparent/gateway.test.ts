/**
 * The daemon in gateway mode on loopback: transparent HTTP decided by the request's Host, the
 * agent known by its address alone, the resolver answering, and the listeners themselves
 * refused as destinations.
 */
import net from "node:net";
import { Resolver as CaresResolver } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, type AdminShield } from "../admin-harness.js";
import { curl, rawExchange, TableResolver, Upstream, v4 } from "../proxy-harness.js";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

let s: AdminShield;
let web: Upstream;
const ports = { http: 0, https: 0, dns: 0 };

beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  ports.http = await freePort();
  ports.https = await freePort();
  ports.dns = await freePort();
  s = await startAdminShield(
    `gateway:
  networks: [127.0.0.0/8]
  listen: [127.0.0.1]
  transparent: { http: ${web.port}, https: 443 }
  ports: { http: ${ports.http}, https: ${ports.https}, dns: ${ports.dns} }
agents:
  - { id: scout, sources: [127.0.0.1/32], allow: ["allowed.test", 127.0.0.3/32] }
`,
    {
      resolver: new TableResolver({ "allowed.test": v4("127.0.0.3"), "denied.test": v4("127.0.0.3") })
        .resolve,
    },
  );
});

afterAll(async () => {
  await s?.close();
  await web?.stop();
});

describe("gateway mode", () => {
  it("serves an origin-form request by its Host, as the agent known by its address", async () => {
    const at = (name: string) =>
      curl([
        "--connect-to",
        `${name}:${web.port}:127.0.0.1:${ports.http}`,
        `http://${name}:${web.port}/p?q=1`,
      ]);
    const before = web.requests.length;
    expect((await at("allowed.test")).status).toBe(200);
    expect(web.requests.at(-1)?.url).toBe("/p?q=1");
    expect((await at("denied.test")).status).toBe(403);
    expect(web.requests.length).toBe(before + 1);
    await s.managed.log.flush();
    const log = (await s.api("GET", "/api/log?agent=scout")).json.records as Array<{
      host: string;
      decision: string;
    }>;
    expect(log.map((r) => `${r.host} ${r.decision}`)).toEqual(
      expect.arrayContaining(["allowed.test allowed", "denied.test denied"]),
    );
  });

  it("refuses a request without a Host, and a CONNECT sent to the transparent port", async () => {
    const r = await rawExchange(ports.http, "GET / HTTP/1.0\r\n\r\n", 500);
    expect(r.reply).toMatch(/^HTTP\/1.1 400 /);
    const c = await rawExchange(
      ports.http,
      "CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n",
      500,
    );
    expect(c.reply).toMatch(/^HTTP\/1.1 400 /);
  });

  it("answers the agent's DNS for names it may reach", async () => {
    const r = new CaresResolver({ timeout: 2000, tries: 1 });
    r.setServers([`127.0.0.1:${ports.dns}`]);
    expect(await r.resolve4("allowed.test")).toEqual(["127.0.0.3"]);
    await expect(r.resolve4("denied.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    const metrics = (await s.api("GET", "/metrics")).text;
    expect(metrics).toMatch(/clawguard_shield_dns_queries_total\{agent="scout",answer="answered"\} 1/);
  });

  it("counts its own listeners among the shield's endpoints", async () => {
    for (const port of [ports.http, ports.https, ports.dns]) {
      const r = await s.api("POST", "/api/check", { agent: "scout", destinations: [`127.0.0.1:${port}`] });
      expect(r.json.results[0].reason, String(port)).toMatch(/shield's own endpoint/);
    }
  });
});
