/**
 * The shield's agent-side HTTP/1.1 server, spoken to byte by byte: what it refuses in a request
 * head, how it reads bodies, frames responses for HTTP/1.0 and 1.1 clients, serves pipelined
 * requests in order, and when it closes connections.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  basic,
  rawExchange,
  responses,
  sha256,
  startTestShield,
  TableResolver,
  Upstream,
  v4,
  type TestShield,
  HTTP_SERVERS,
} from "./proxy-harness.js";

describe.each(HTTP_SERVERS)("with the %s HTTP server", (httpServer) => {
  const TOKEN = "scout-token-for-front-tests";
  const AUTH = `Proxy-Authorization: ${basic("scout", TOKEN)}\r\n`;

  let web: Upstream;
  let t: TestShield;
  const resolver = new TableResolver({ "allowed.test": v4("127.0.0.3") });

  beforeAll(async () => {
    web = await new Upstream("127.0.0.3").start();
    t = await startTestShield(
      `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
limits: { header_timeout_ms: 1000, idle_timeout_ms: 1500, max_header_bytes: 8192 }
agents:
  - { id: scout, token_sha256: "${sha256(TOKEN)}", allow: [allowed.test, 127.0.0.3/32] }
`,
      resolver.resolve,
      { httpServer },
    );
  });

  afterAll(async () => {
    await t?.close();
    await web?.stop();
  });

  const get = (path: string, extra = "") =>
    `GET http://allowed.test:${web.port}${path} HTTP/1.1\r\nHost: allowed.test\r\n${AUTH}${extra}\r\n`;

  describe("request heads", () => {
    const refused: Array<[string, () => string]> = [
      ["an HTTP/1.1 request without Host", () => get("/").replace("Host: allowed.test\r\n", "")],
      ["two Host headers", () => get("/", "Host: other.test\r\n")],
      ["obsolete line folding", () => get("/", "X-Folded: a\r\n  b\r\n")],
      ["a bare LF inside the head", () => get("/", "X-A: 1\nX-B: 2\r\n")],
      ["whitespace before a colon", () => get("/", "X-Space : 1\r\n")],
      ["an unknown HTTP version", () => get("/").replace("HTTP/1.1", "HTTP/2.0")],
      ["a control character in the target", () => get("/a\x01b")],
      ["a header name with a non-token character", () => get("/", "X(A): 1\r\n")],
    ];
    const twoSpaces = () => get("/").replace(" HTTP/1.1", "  HTTP/1.1");
    // Node's parser reads a run of spaces in the request line as one.
    if (httpServer === "clawguard") refused.push(["a request line with two spaces", twoSpaces]);
    else
      it("reads a request line with two spaces as one with single spaces, and forwards it so", async () => {
        const before = web.requests.length;
        const r = await rawExchange(t.port, twoSpaces(), 800);
        expect(responses(r.reply).map((x) => [x.status, x.body])).toEqual([[200, "ok"]]);
        expect(web.requests.slice(before).map((x) => x.url)).toEqual(["/"]);
      });
    it.each(refused)("refuses %s with 400 and closes, with nothing sent upstream", async (_name, build) => {
      const before = { conns: web.connections, records: t.sink.records.length };
      const r = await rawExchange(t.port, build(), 1500);
      expect(r.reply).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
      expect(r.closedByPeer).toBe(true);
      expect(web.connections).toBe(before.conns);
      const records = t.sink.records.slice(before.records);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ decision: "denied", agent: null });
      expect(records[0]!.reason).toMatch(/^refused: malformed request/);
    });

    it("closes for good after a request it could not read, even if the client keeps its side open", async () => {
      const s = net.connect({ host: "127.0.0.1", port: t.port, allowHalfOpen: true });
      let reply = "";
      s.on("data", (d: Buffer) => (reply += d.toString("latin1")));
      const ended = new Promise((r) => s.once("end", r));
      const failed = new Promise<string>((resolve) => {
        s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        setTimeout(() => resolve("no error"), 2000);
      });
      s.write("NOT A REQUEST\r\n\r\n");
      await ended;
      expect(reply).toMatch(/^HTTP\/1.1 400 /);
      // Nothing listens on the shield's side any more: what the client sends now is refused.
      s.write("more");
      setTimeout(() => s.writable && s.write("more"), 100);
      expect(await failed).toMatch(/^(ECONNRESET|EPIPE)$/);
      s.destroy();
    });

    it("refuses an expectation other than 100-continue with 417, logged, with nothing sent upstream", async () => {
      const before = { conns: web.connections, records: t.sink.records.length };
      const r = await rawExchange(t.port, get("/", "Expect: something-else\r\n"), 1500);
      expect(r.reply).toMatch(/^HTTP\/1.1 417 Expectation Failed\r\n/);
      expect(r.closedByPeer).toBe(true);
      expect(web.connections).toBe(before.conns);
      expect(t.sink.records.slice(before.records)).toMatchObject([
        { decision: "denied", reason: "refused: malformed request (an expectation other than 100-continue)" },
      ]);
    });

    it("ignores empty lines before a request line", async () => {
      const r = await rawExchange(t.port, `\r\n\r\n${get("/")}`, 800);
      expect(responses(r.reply).map((x) => [x.status, x.body])).toEqual([[200, "ok"]]);
    });

    it("closes a connection that sends nothing within the header timeout, with 408", async () => {
      const started = Date.now();
      const r = await rawExchange(t.port, "", 4000);
      expect(r.closedByPeer).toBe(true);
      expect(r.reply).toMatch(/^HTTP\/1.1 408 /);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    });
  });

  describe("keep-alive and pipelining", () => {
    it("answers pipelined requests in order on one connection", async () => {
      const conns = web.connections;
      const r = await rawExchange(t.port, get("/first") + get("/echo") + get("/third"), 1000);
      const got = responses(r.reply);
      expect(got.map((x) => x.status)).toEqual([200, 200, 200]);
      expect(got[0]!.body).toBe("ok");
      expect(JSON.parse(got[1]!.body)).toMatchObject({ url: "/echo" });
      expect(got[2]!.body).toBe("ok");
      expect(r.closedByPeer).toBe(false);
      // One at a time, one kept-alive connection to the destination carried all three. Node's
      // server reads pipelined requests ahead and hands them over at once, each going upstream
      // while the ones before it are still answered: up to one connection each.
      expect(web.connections - conns).toBeLessThanOrEqual(httpServer === "clawguard" ? 1 : 3);
    });

    it("closes a kept-alive connection idle past the keep-alive timeout, without a record", async () => {
      const s = net.connect({ host: "127.0.0.1", port: t.port });
      s.on("error", () => {});
      let reply = "";
      s.on("data", (d: Buffer) => (reply += d.toString("latin1")));
      const closed = new Promise<number>((resolve) => s.once("close", () => resolve(Date.now())));
      s.write(get("/"));
      while (!reply.includes("\r\n\r\nok")) await new Promise((r) => setTimeout(r, 10));
      const answered = Date.now();
      const records = t.sink.records.length;
      const at = await closed;
      // keep-alive timeout is min(5000, idle_timeout_ms) = 1500 ms, checked every 250 ms (Node's
      // server waits 1 s more, the margin it keeps over the timeout it advertises).
      expect(at - answered).toBeGreaterThanOrEqual(1400);
      expect(at - answered).toBeLessThan(3000);
      expect(t.sink.records.length).toBe(records);
    });

    it("answers HEAD without a body and serves the next request on the same connection", async () => {
      const head = get("/").replace("GET", "HEAD");
      const r = await rawExchange(t.port, head + get("/"), 1000);
      const [first, ...rest] = r.reply.split("\r\n\r\n");
      expect(first).toMatch(/^HTTP\/1.1 200 /);
      expect(rest.join("\r\n\r\n")).toMatch(/^HTTP\/1.1 200 [^]*\r\n\r\nok$/);
    });
  });

  describe("HTTP/1.0 clients", () => {
    it("gets a body the destination chunked as bytes until close, and the connection closes", async () => {
      const req = get("/big?n=100000").replace("HTTP/1.1", "HTTP/1.0");
      const r = await rawExchange(t.port, req, 3000);
      const [got] = responses(r.reply);
      expect(got!.status).toBe(200);
      expect(got!.head).not.toMatch(/transfer-encoding/i);
      expect(got!.head).toMatch(/\r\nConnection: close/);
      expect(got!.body).toBe("a".repeat(100000));
      expect(r.closedByPeer).toBe(true);
    });

    it("keeps a connection that asked for keep-alive open for a framed response", async () => {
      const req = get("/", "Connection: keep-alive\r\n").replace("HTTP/1.1", "HTTP/1.0");
      const r = await rawExchange(t.port, req + req, 1000);
      const got = responses(r.reply);
      expect(got.map((x) => [x.status, x.body])).toEqual([
        [200, "ok"],
        [200, "ok"],
      ]);
      expect(got[0]!.head).toMatch(/\r\nConnection: keep-alive/);
      expect(r.closedByPeer).toBe(false);
    });
  });

  describe("request bodies", () => {
    const post = (body: string, extra: string) =>
      `POST http://allowed.test:${web.port}/echo HTTP/1.1\r\nHost: allowed.test\r\n${AUTH}${extra}\r\n${body}`;

    it("decodes a chunked body (extensions and trailers dropped) and forwards its bytes", async () => {
      const before = web.requests.length;
      const body = "3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n";
      const r = await rawExchange(t.port, post(body, "Transfer-Encoding: chunked\r\n") + get("/"), 1000);
      const got = responses(r.reply);
      expect(got.map((x) => x.status)).toEqual([200, 200]);
      expect(JSON.parse(got[0]!.body)).toMatchObject({ body: 7 });
      expect(web.requests[before]!.body.toString()).toBe("abcdefg");
      expect(web.requests[before]!.rawHeaders).not.toContain("X-Trailer");
    });

    it("relays the destination's 100 Continue, then forwards the body sent after it", async () => {
      const before = web.requests.length;
      const s = net.connect({ host: "127.0.0.1", port: t.port });
      let reply = "";
      s.on("data", (d: Buffer) => (reply += d.toString("latin1")));
      s.write(post("", "Content-Length: 5\r\nExpect: 100-continue\r\n"));
      await expect.poll(() => reply).toMatch(/^HTTP\/1.1 100 Continue\r\n\r\n$/);
      s.write("hello");
      await expect.poll(() => reply).toMatch(/\r\n\r\n\{.*\}$/);
      s.destroy();
      expect(web.requests[before]!.body.toString()).toBe("hello");
    });

    it("forwards a Content-Length body split across many writes", async () => {
      const before = web.requests.length;
      const s = net.connect({ host: "127.0.0.1", port: t.port });
      let reply = "";
      s.on("data", (d: Buffer) => (reply += d.toString("latin1")));
      s.write(post("", "Content-Length: 10\r\n"));
      for (const piece of ["01", "234", "56789"]) {
        await new Promise((r) => setTimeout(r, 30));
        s.write(piece);
      }
      while (!reply.includes("}")) await new Promise((r) => setTimeout(r, 10));
      s.destroy();
      expect(web.requests[before]!.body.toString()).toBe("0123456789");
    });

    it("refuses a malformed chunk with 400, closes, and says why in the request's record", async () => {
      const before = t.sink.records.length;
      const r = await rawExchange(
        t.port,
        post("zz\r\nabc\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n"),
        1500,
      );
      expect(r.reply).toMatch(/^HTTP\/1.1 400 /);
      expect(r.closedByPeer).toBe(true);
      const records = await t.sink.waitFor(before + 1);
      expect(records.slice(before)).toHaveLength(1);
      // Each server says it in its own words: "malformed chunk size", llhttp's "invalid character in chunk size".
      expect(records[before]!.reason).toMatch(/(malformed|invalid character in) chunk size/);
    });
  });
});
