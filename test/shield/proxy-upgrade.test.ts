/**
 * An Upgrade request becomes a byte stream only once its destination answers 101. Relayed as
 * bytes from the start, a destination that answers 200 would carry every later request of the
 * agent on that connection past the shield unread and unlogged.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  basic,
  rawExchange,
  sha256,
  startTestShield,
  TableResolver,
  v4,
  type TestShield,
} from "./proxy-harness.js";

const SECRET = "scout-secret-for-upgrade-tests";

/** An origin that reads request heads one by one: /ws switches protocols and echoes, anything else gets 200. */
class HeadOrigin {
  readonly heads: string[] = [];
  readonly server = net.createServer((s) => {
    let buf = "";
    let upgraded = false;
    s.on("data", (d: Buffer) => {
      if (upgraded) {
        s.write(d);
        return;
      }
      buf += d.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0 && !upgraded; end = buf.indexOf("\r\n\r\n")) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        this.heads.push(head.split("\r\n")[0]!);
        if (head.startsWith("GET /ws ")) {
          upgraded = true;
          s.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
          if (buf) s.write(buf);
        } else {
          s.write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nnot ws");
        }
      }
    });
    s.on("error", () => undefined);
  });
  port = 0;
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
}

let origin: HeadOrigin;
let t: TestShield;
const auth = () => `Proxy-Authorization: ${basic("scout", SECRET)}\r\n`;
const upgrade = (path: string) =>
  `GET http://ws.test:${origin.port}${path} HTTP/1.1\r\nHost: ws.test:${origin.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${auth()}\r\n`;

beforeAll(async () => {
  origin = new HeadOrigin();
  await origin.start();
  t = await startTestShield(
    `listen: 127.0.0.1:3128\nlog: { path: ./unused.db }\nagents:\n  - { id: scout, token_sha256: "${sha256(SECRET)}", allow: ["*.test", 127.0.0.1/32] }\n`,
    new TableResolver({ "ws.test": v4("127.0.0.1") }).resolve,
  );
});

afterAll(async () => {
  await t?.close();
  origin?.server.close();
});

describe("an upgrade the destination does not accept", () => {
  it("carries nothing pipelined behind it, answers with the destination's response and closes", async () => {
    const before = origin.heads.length;
    const smuggled = `GET http://ws.test:${origin.port}/secret HTTP/1.1\r\nHost: ws.test\r\n\r\n`;
    const r = await rawExchange(t.port, upgrade("/refuse") + smuggled, 800);
    expect(r.reply).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    expect(r.reply).toMatch(/\r\n\r\nnot ws$/);
    expect(r.closedByPeer).toBe(true);
    expect(origin.heads.slice(before)).toEqual(["GET /refuse HTTP/1.1"]);
    await expect.poll(() => t.sink.records.at(-1)?.path).toBe("/refuse");
    expect(t.sink.records.at(-1)?.reason).toMatch(/answered 200, not 101 Switching Protocols/);
  });

  it("carries nothing the agent sends after the answer either", async () => {
    const before = origin.heads.length;
    const got = await new Promise<{ reply: string; closed: boolean }>((resolve) => {
      const s = net.connect(t.port, "127.0.0.1");
      let reply = "";
      s.on("data", (d: Buffer) => {
        reply += d.toString("latin1");
        // Once the answer is in, try to use the connection as if it were upgraded.
        if (reply.endsWith("not ws")) s.write(`GET /secret HTTP/1.1\r\nHost: ws.test\r\n\r\n`);
      });
      s.on("error", () => undefined);
      s.on("close", () => resolve({ reply, closed: true }));
      s.write(upgrade("/refuse"));
      setTimeout(() => resolve({ reply, closed: false }), 1500).unref();
    });
    expect(got.reply).toMatch(/^HTTP\/1.1 200 OK/);
    expect(got.closed).toBe(true);
    expect(origin.heads.slice(before)).toEqual(["GET /refuse HTTP/1.1"]);
  });
});

describe("an upgrade the destination accepts", () => {
  it("becomes a byte stream after the 101, with the bytes sent early delivered after it", async () => {
    const r = await rawExchange(t.port, upgrade("/ws") + "early bytes", 800);
    expect(r.reply).toMatch(/^HTTP\/1.1 101 Switching Protocols\r\n/);
    expect(r.reply).toMatch(/\r\n\r\nearly bytes$/);
  });
});

describe("CONNECT without a port", () => {
  it("is a 400, as RFC 9110 requires, and nothing is dialled", async () => {
    const before = origin.heads.length;
    const r = await rawExchange(t.port, `CONNECT ws.test HTTP/1.1\r\nHost: ws.test\r\n${auth()}\r\n`, 500);
    expect(r.reply).toMatch(/^HTTP\/1.1 400 /);
    expect(origin.heads.length).toBe(before);
    const connect = () => t.sink.records.find((x) => x.method === "CONNECT");
    await expect.poll(() => connect()?.decision).toBe("denied");
    expect(connect()?.reason).toMatch(/no port; CONNECT names host:port/);
  });
});
