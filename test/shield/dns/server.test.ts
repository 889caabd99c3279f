/**
 * The shield's resolver for gateway mode, asked by a real DNS client (Node's c-ares resolver)
 * and by hand-made packets: answers for names the agent may reach, with the addresses the shield
 * checked; NXDOMAIN for the rest; REFUSED for every other record type and for strangers.
 */
import dgram from "node:dgram";
import { Resolver as CaresResolver } from "node:dns/promises";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../../src/shield/config.js";
import { ShieldDns, type DnsAnswer } from "../../../src/shield/dns/server.js";
import { Policy } from "../../../src/shield/policy/index.js";
import { TableResolver, v4, v6 } from "../proxy-harness.js";

const policy = Policy.compile(
  parseShieldConfig(
    `listen: 127.0.0.1:3128
log: { path: ./unused.db }
agents:
  - { id: scout, sources: [127.0.0.1/32], allow: ["*.ok.test:443", "web.test:80", 127.0.0.3/32, "[fd00::3]"] }
`,
    "shield.yaml",
  ),
  { endpoints: [{ host: "127.0.0.1", port: 3128 }] },
);

const names = new TableResolver({
  "a.ok.test": v4("127.0.0.3"),
  "both.ok.test": [
    [
      { address: "127.0.0.3", family: 4 },
      { address: "fd00::3", family: 6 },
    ],
  ],
  "meta.ok.test": v4("169.254.169.254"),
  "mixed.ok.test": [
    [
      { address: "127.0.0.3", family: 4 },
      { address: "10.0.0.1", family: 4 },
    ],
  ],
  "web.test": v4("127.0.0.3"),
  "six.ok.test": v6("fd00::3"),
  "denied.test": v4("127.0.0.3"),
});

const counted: Array<[string | null, DnsAnswer]> = [];
let dns: ShieldDns;
let client: CaresResolver;

beforeAll(async () => {
  dns = new ShieldDns({
    policy: () => policy,
    resolver: names.resolve,
    ports: { https: 443, http: 80 },
    onQuery: (agent, answer) => counted.push([agent, answer]),
  });
  await dns.listen("127.0.0.1", 0);
  client = new CaresResolver({ timeout: 2000, tries: 1 });
  client.setServers([`127.0.0.1:${dns.port}`]);
});

afterAll(() => dns.close());

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

describe("the shield's resolver", () => {
  it("answers a name the agent may reach with the addresses the shield checked, over UDP", async () => {
    expect(await client.resolve4("a.ok.test")).toEqual(["127.0.0.3"]);
    expect(await client.resolve4("both.ok.test")).toEqual(["127.0.0.3"]);
    expect(await client.resolve6("both.ok.test")).toEqual(["fd00::3"]);
    expect(await client.resolve6("six.ok.test")).toEqual(["fd00::3"]);
    // Allowed on port 80 only: the plain-HTTP port counts too.
    expect(await client.resolve4("web.test")).toEqual(["127.0.0.3"]);
  });

  it("says NXDOMAIN for names the rules or the address checks refuse", async () => {
    expect(await code(client.resolve4("denied.test"))).toBe("ENOTFOUND");
    expect(await code(client.resolve4("meta.ok.test"))).toBe("ENOTFOUND");
    // One refused address refuses the name, as the proxy does.
    expect(await code(client.resolve4("mixed.ok.test"))).toBe("ENOTFOUND");
    expect(await code(client.resolve4("gone.ok.test"))).toBe("ESERVFAIL");
  });

  it("answers no other record type, so nothing tunnels through it", async () => {
    for (const q of [
      client.resolveTxt("a.ok.test"),
      client.resolveMx("a.ok.test"),
      client.resolveCname("a.ok.test"),
    ])
      expect(await code(q)).toBe("EREFUSED");
    expect(await code(client.resolveNs("ok.test"))).toBe("EREFUSED");
  });

  it("refuses a source that is no agent, and counts every query by agent", async () => {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.2", () => r()));
    const reply = new Promise<Buffer>((r) => sock.once("message", (m) => r(m)));
    sock.send(
      dnsPacket.encode({
        type: "query",
        id: 7,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: "A", name: "a.ok.test" }],
      }),
      dns.port,
      "127.0.0.1",
    );
    const r = dnsPacket.decode(await reply) as dnsPacket.DecodedPacket & { rcode?: string };
    sock.close();
    expect(r.rcode).toBe("REFUSED");
    expect(r.answers).toEqual([]);
    expect(counted).toContainEqual([null, "refused"]);
    expect(counted).toContainEqual(["scout", "answered"]);
    expect(counted).toContainEqual(["scout", "nxdomain"]);
  });

  it("answers over TCP as well", async () => {
    const net = await import("node:net");
    const s = net.connect(dns.port, "127.0.0.1");
    const q = dnsPacket.streamEncode({ type: "query", id: 9, questions: [{ type: "A", name: "a.ok.test" }] });
    const got = new Promise<Buffer>((r) => s.once("data", (d: Buffer) => r(d)));
    s.write(q);
    const a = dnsPacket.streamDecode(await got);
    s.destroy();
    expect(a.answers?.map((x) => (x as { data: string }).data)).toEqual(["127.0.0.3"]);
  });
});
