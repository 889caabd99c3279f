import dgram from "node:dgram";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeDirectTcp, probeDns, probeViaShield, resolversOf } from "../../src/lockdown/verify.js";

// Real sockets on loopback, each answering the way a leak or a working shield would.
let listener: net.Server;
let closedPort: number;
let shield403: net.Server;
let shield502: net.Server;
let tunnel: net.Server;
const udp: dgram.Socket[] = [];

function port(s: net.Server): number {
  return (s.address() as net.AddressInfo).port;
}

async function listen(handler: (c: net.Socket) => void): Promise<net.Server> {
  const s = net.createServer(handler);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return s;
}

const answering = (status: string) => (c: net.Socket) =>
  c.once("data", () => c.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\n\r\n`));

/** A DNS responder on 127.0.0.1 that answers every query with `rcode`. */
async function resolverAnswering(rcode: number): Promise<number> {
  const s = dgram.createSocket("udp4");
  udp.push(s);
  s.on("message", (q, from) => {
    const head = Buffer.from(q.subarray(0, 12));
    head.writeUInt16BE(0x8180 | rcode, 2);
    s.send(Buffer.concat([head, q.subarray(12)]), from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  return s.address().port;
}

beforeAll(async () => {
  listener = await listen((c) => c.end());
  const tmp = await listen(() => undefined);
  closedPort = port(tmp);
  await new Promise((r) => tmp.close(r));
  shield403 = await listen(answering("403 Forbidden"));
  shield502 = await listen(answering("502 Bad Gateway"));
  tunnel = await listen(answering("200 Connection established"));
});

afterAll(async () => {
  for (const s of [listener, shield403, shield502, tunnel]) await new Promise((r) => s?.close(r));
  for (const s of udp) s.close();
});

describe("lockdown probes", () => {
  it("a direct connection that completes or is refused by the far end is a leak", async () => {
    const open = await probeDirectTcp({ host: "127.0.0.1", port: port(listener) }, 2000);
    expect(open).toMatchObject({ held: false, outcome: expect.stringMatching(/connected directly/) });
    const refused = await probeDirectTcp({ host: "127.0.0.1", port: closedPort }, 2000);
    expect(refused).toMatchObject({ held: false, outcome: expect.stringMatching(/ECONNREFUSED/) });
  });

  it("a local resolver leaks when it has an upstream answer and holds when it can only fail", async () => {
    const nx = await resolverAnswering(3);
    const servfail = await resolverAnswering(2);
    const leak = await probeDns("127.0.0.1", 2000, nx);
    expect(leak.held).toBe(false);
    expect(leak.outcome).toMatch(/NXDOMAIN/);
    const held = await probeDns("127.0.0.1", 2000, servfail);
    expect(held.held).toBe(true);
    expect(held.outcome).toMatch(/SERVFAIL/);
  });

  it("the shield opening the tunnel or refusing the host proves the path; any other answer does not", async () => {
    const target = { host: "web.test", port: 443 };
    expect((await probeViaShield({ host: "127.0.0.1", port: port(tunnel) }, target, 2000)).held).toBe(true);
    const refused = await probeViaShield({ host: "127.0.0.1", port: port(shield403) }, target, 2000);
    expect(refused).toMatchObject({
      held: true,
      outcome: expect.stringMatching(/refused web.test:443 \(403\)/),
    });
    expect((await probeViaShield({ host: "127.0.0.1", port: port(shield502) }, target, 2000)).held).toBe(
      false,
    );
    const down = await probeViaShield({ host: "127.0.0.1", port: closedPort }, target, 2000);
    expect(down).toMatchObject({
      held: false,
      outcome: expect.stringMatching(/cannot reach the shield: ECONNREFUSED/),
    });
  });

  it("reads the resolvers of resolv.conf, zone ids dropped", () => {
    expect(
      resolversOf("# x\nnameserver 10.0.0.53\nsearch lan\nnameserver fe80::1%eth0\nnameserver bogus\n"),
    ).toEqual(["10.0.0.53", "fe80::1"]);
  });
});
