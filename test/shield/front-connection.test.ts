/**
 * What either HTTP server does over the life of one agent connection, where the shield's own
 * server and Node's work differently inside (one request at a time, or read ahead) and must look
 * the same from outside: answers owed before a refusal or a tunnel go out first and whole,
 * nothing after a request with a refused framing reaches a destination, a body is framed by a
 * field however many come before it, and shutdown closes at once what holds no request.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HTTP_SERVERS,
  rawExchange,
  responses,
  startTestShield,
  TableResolver,
  Upstream,
  v4,
  type TestShield,
} from "./proxy-harness.js";

const config = (limits = "") => `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
${limits}
agents:
  - { id: scout, sources: [127.0.0.1/32], allow: [allowed.test, 127.0.0.3/32] }
`;

/** Large enough that its response is still being written when the request behind it is read. */
const BIG = 400_000;

describe.each(HTTP_SERVERS)("with the %s HTTP server", (httpServer) => {
  let web: Upstream;
  let t: TestShield;
  const resolver = new TableResolver({ "allowed.test": v4("127.0.0.3") });

  beforeAll(async () => {
    web = await new Upstream("127.0.0.3").start();
    t = await startTestShield(config("limits: { max_header_bytes: 65536 }"), resolver.resolve, {
      httpServer,
    });
  });

  afterAll(async () => {
    await t?.close();
    await web?.stop();
  });

  const get = (path: string) =>
    `GET http://allowed.test:${web.port}${path} HTTP/1.1\r\nHost: allowed.test\r\n\r\n`;

  it.each([
    ["a line no parser can read", "GET /x HTTP/1.1\r\nHost: a\r\nNo Colon\r\n\r\n"],
    ["a head the rules refuse (no Host)", "GET http://allowed.test/refused HTTP/1.1\r\n\r\n"],
  ])(
    "answers a request in full before refusing %s behind it, and serves nothing after",
    async (_what, refused) => {
      const before = { records: t.sink.records.length, requests: web.requests.length };
      const r = await rawExchange(t.port, get(`/big?n=${BIG}`) + refused + get("/after"));
      const got = responses(r.reply);
      expect(got.map((x) => x.status)).toEqual([200, 400]);
      expect(got[0]!.body).toBe("a".repeat(BIG));
      expect(r.closedByPeer).toBe(true);
      expect(web.requests.slice(before.requests).map((x) => x.url)).toEqual([`/big?n=${BIG}`]);
      const records = await t.sink.waitFor(before.records + 2);
      expect(records.slice(before.records).map((x) => x.reason)).toContainEqual(
        expect.stringMatching(/^refused: malformed request/),
      );
    },
  );

  it("lets nothing after a request with a coding before chunked reach a destination", async () => {
    const before = web.requests.length;
    const body = "5\r\nhello\r\n0\r\n\r\n";
    const r = await rawExchange(
      t.port,
      `POST http://allowed.test:${web.port}/echo HTTP/1.1\r\nHost: allowed.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${body}${get("/smuggled")}`,
      1000,
    );
    expect(responses(r.reply).map((x) => x.status)).toEqual([400]);
    expect(r.closedByPeer).toBe(true);
    expect(web.requests.slice(before)).toEqual([]);
    expect(t.sink.records.at(-1)).toMatchObject({
      decision: "denied",
      reason: "refused: Transfer-Encoding other than chunked",
    });
  });

  it("opens a tunnel asked for behind a request only once that request is answered", async () => {
    const connect = `CONNECT allowed.test:${web.port} HTTP/1.1\r\nHost: allowed.test\r\n\r\n`;
    const r = await rawExchange(t.port, get(`/big?n=${BIG}`) + connect + get("/through-the-tunnel"), 1500);
    const established = r.reply.indexOf("HTTP/1.1 200 Connection Established\r\n\r\n");
    expect(established).toBeGreaterThan(0);
    // Before it, the first response and nothing else; after it, what the tunnel carried.
    expect(responses(r.reply.slice(0, established)).map((x) => [x.status, x.body.length])).toEqual([
      [200, BIG],
    ]);
    expect(r.reply.slice(established)).toMatch(/\r\n\r\nok$/);
  });

  it.each([
    ["keep-alive, then close", "Connection: keep-alive\r\nConnection: close\r\n"],
    ["close, then keep-alive", "Connection: close, keep-alive\r\n"],
  ])("serves nothing after an HTTP/1.0 request whose Connection says %s", async (_order, fields) => {
    const before = web.requests.length;
    const first = `GET http://allowed.test:${web.port}/first HTTP/1.0\r\n${fields}\r\n`;
    const r = await rawExchange(t.port, first + get("/second"), 1000);
    // RFC 9112 §9.3: close wins, whatever else the field says and in whatever order.
    expect(responses(r.reply).map((x) => x.status)).toEqual([200]);
    expect(r.closedByPeer).toBe(true);
    expect(web.requests.slice(before).map((x) => x.url)).toEqual(["/first"]);
  });

  it("reads the body of a connection's last request when it comes after the head", async () => {
    const before = web.requests.length;
    const s = net.connect({ host: "127.0.0.1", port: t.port });
    let reply = "";
    s.on("data", (d: Buffer) => (reply += d.toString("latin1")));
    const closed = new Promise((resolve) => s.once("close", resolve));
    s.write(`POST http://allowed.test:${web.port}/echo HTTP/1.0\r\nContent-Length: 10\r\n\r\n`);
    // Each piece once the head, or the piece before it, has gone upstream.
    for (const piece of ["01234", "56789"]) {
      const sent = web.bytesIn;
      await expect.poll(() => web.bytesIn).toBeGreaterThan(sent);
      s.write(piece);
    }
    await closed;
    expect(responses(reply).map((x) => x.status)).toEqual([200]);
    expect(web.requests.slice(before).map((x) => x.body.toString())).toEqual(["0123456789"]);
  });

  it("frames a body by a Content-Length that comes after 2,100 other fields", async () => {
    const before = web.requests.length;
    const fields = "X: 1\r\n".repeat(2100);
    const r = await rawExchange(
      t.port,
      `POST http://allowed.test:${web.port}/echo HTTP/1.1\r\nHost: allowed.test\r\n${fields}Content-Length: 5\r\n\r\nhello${get("/next")}`,
      1500,
    );
    expect(responses(r.reply).map((x) => x.status)).toEqual([200, 200]);
    expect(web.requests.slice(before).map((x) => [x.url, x.body.toString()])).toEqual([
      ["/echo", "hello"],
      ["/next", ""],
    ]);
  });

  it("on shutdown closes at once the connections that hold no request, while a tunnel waits out the grace", async () => {
    // Time limits far beyond the test's own: only shutdown can close these connections in time.
    const s = await startTestShield(config("limits: { header_timeout_ms: 600000 }"), resolver.resolve, {
      httpServer,
    });
    const open = (bytes: string) =>
      new Promise<net.Socket>((resolve) => {
        const c = net.connect({ host: "127.0.0.1", port: s.port }, () => resolve(c));
        c.on("error", () => {});
        c.on("data", () => {});
        c.write(bytes);
      });
    const closed = (c: net.Socket) => new Promise<void>((resolve) => c.once("close", () => resolve()));
    const silent = await open("");
    const kept = await open(get("/"));
    const tunnel = await open(`CONNECT allowed.test:${web.port} HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
    // The kept-alive connection has had its answer and the tunnel is open.
    await expect.poll(() => kept.bytesRead > 0 && tunnel.bytesRead > 0).toBe(true);
    const stopped = s.shield.close(600_000);
    await Promise.all([closed(silent), closed(kept)]);
    expect(tunnel.destroyed).toBe(false);
    tunnel.destroy();
    await stopped;
  });
});
