/**
 * The shield's own HTTP/1.1 client against scripted origins on loopback: framing of every kind
 * of response, connection reuse, refusal of anything that could be split two ways, request
 * bodies, backpressure, and the retry of a kept-alive connection the origin closed.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { DialError } from "../../src/shield/net/dial.js";
import { basic, rawExchange, sha256, startTestShield, TableResolver, Upstream, v4 } from "./proxy-harness.js";
import {
  UpstreamPool,
  type Exchange,
  type UpstreamHandler,
  type UpstreamRequest,
} from "../../src/shield/proxy/upstream.js";

interface Result {
  status: number;
  reason: string;
  headers: string[];
  body: Buffer;
  continues: number;
  error: Error | null;
}

/** Collects what an exchange reports; `done` settles on onEnd or onError. */
class Collector implements UpstreamHandler {
  status = 0;
  reason = "";
  headers: string[] = [];
  chunks: Buffer[] = [];
  continues = 0;
  drains = 0;
  /** Return value of onData: false to hold the body back. */
  accept = true;
  readonly done: Promise<Result>;
  private settle!: (r: Result) => void;
  private settled = false;

  constructor() {
    this.done = new Promise((resolve) => (this.settle = resolve));
  }
  onContinue(): void {
    this.continues += 1;
  }
  onResponse(status: number, reason: string, raw: string[]): void {
    this.status = status;
    this.reason = reason;
    this.headers = raw;
  }
  onData(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk));
    return this.accept;
  }
  onEnd(): void {
    this.finish(null);
  }
  onError(err: Error): void {
    this.finish(err);
  }
  onDrain(): void {
    this.drains += 1;
  }
  get received(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
  private finish(error: Error | null): void {
    if (this.settled) throw new Error("exchange ended twice");
    this.settled = true;
    this.settle({
      status: this.status,
      reason: this.reason,
      headers: this.headers,
      body: Buffer.concat(this.chunks),
      continues: this.continues,
      error,
    });
  }
}

/**
 * An origin that answers each request with the next scripted reply (raw bytes, or a function of
 * the socket). Records connections and the raw bytes of every request.
 */
class ScriptedOrigin {
  connections = 0;
  readonly seen: string[] = [];
  readonly sockets: net.Socket[] = [];
  private readonly server: net.Server;
  port = 0;

  constructor(private readonly replies: Array<string | Buffer | ((s: net.Socket, req: string) => void)>) {
    this.server = net.createServer((s) => {
      this.connections += 1;
      this.sockets.push(s);
      s.on("error", () => {});
      let buf = "";
      s.on("data", (d: Buffer) => {
        buf += d.toString("latin1");
        // One reply per complete head (the tests here send no request bodies).
        for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
          const req = buf.slice(0, end + 4);
          buf = buf.slice(end + 4);
          this.seen.push(req);
          const reply = this.replies.shift();
          if (reply === undefined) s.destroy();
          else if (typeof reply === "function") reply(s, req);
          else s.write(reply);
        }
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const pools: UpstreamPool[] = [];
const origins: Array<{ stop(): Promise<void> }> = [];

function pool(opts: Partial<ConstructorParameters<typeof UpstreamPool>[0]> = {}): UpstreamPool {
  const p = new UpstreamPool({
    connectTimeoutMs: 2000,
    idleTimeoutMs: 5000,
    maxHeaderBytes: 16 * 1024,
    ...opts,
  });
  pools.push(p);
  return p;
}

async function origin(replies: ConstructorParameters<typeof ScriptedOrigin>[0]): Promise<ScriptedOrigin> {
  const o = await new ScriptedOrigin(replies).start();
  origins.push(o);
  return o;
}

function get(port: number, extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    address: "127.0.0.1",
    port,
    method: "GET",
    target: "/",
    headers: ["Host", `origin.test:${port}`],
    hasBody: false,
    ...extra,
  };
}

async function fetchOnce(p: UpstreamPool, req: UpstreamRequest): Promise<Result> {
  const c = new Collector();
  p.request(req, c);
  return c.done;
}

afterEach(async () => {
  for (const p of pools.splice(0)) p.close();
  await Promise.all(origins.splice(0).map((o) => o.stop()));
});

describe("response framing", () => {
  it("reads Content-Length bodies and reuses the connection for the next request", async () => {
    const o = await origin([
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello",
      "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc",
    ]);
    const p = pool();
    const a = await fetchOnce(p, get(o.port, { target: "/one?x=1" }));
    expect(a).toMatchObject({ status: 200, reason: "OK", error: null });
    expect(a.body.toString()).toBe("hello");
    expect(a.headers).toEqual(["Content-Length", "5", "X-A", "1"]);
    expect(p.idle).toBe(1);
    const b = await fetchOnce(p, get(o.port));
    expect(b.status).toBe(201);
    expect(b.body.toString()).toBe("abc");
    expect(o.connections).toBe(1);
    expect(o.seen[0]).toBe(`GET /one?x=1 HTTP/1.1\r\nHost: origin.test:${o.port}\r\n\r\n`);
  });

  it("reads repeats of one Content-Length as that length, and reports them as one field", async () => {
    const o = await origin([
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\ncontent-length: 5\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nX-B: 2\r\nContent-Length: 3, 3\r\n\r\nabc",
    ]);
    const p = pool();
    const a = await fetchOnce(p, get(o.port));
    expect(a.headers).toEqual(["Content-Length", "5", "X-A", "1"]);
    expect(a.body.toString()).toBe("hello");
    const b = await fetchOnce(p, get(o.port));
    expect(b.headers).toEqual(["X-B", "2", "Content-Length", "3"]);
    expect(b.body.toString()).toBe("abc");
    expect(o.connections).toBe(1);
  });

  it("de-chunks chunked bodies split anywhere, with extensions and trailers, then reuses", async () => {
    const body =
      '4;ext=1\r\nWiki\r\n5;a;b="q \\"x\\""\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n';
    const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    const o = await origin([
      (s) => {
        // One byte per write, so every state of the parser sees a split.
        const all = Buffer.from(head + body);
        let i = 0;
        const next = () => {
          if (i >= all.length) return;
          s.write(all.subarray(i, i + 1), () => setImmediate(next));
          i += 1;
        };
        next();
      },
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ]);
    const p = pool();
    const r = await fetchOnce(p, get(o.port));
    expect(r.error).toBeNull();
    expect(r.body.toString()).toBe("Wikipedia in\r\n\r\nchunks.");
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("ok");
    expect(o.connections).toBe(1);
  });

  it("reads a body without length until the origin closes, and does not reuse that connection", async () => {
    const o = await origin([
      (s) => s.end("HTTP/1.1 200 OK\r\n\r\nuntil the end"),
      "HTTP/1.1 204 No Content\r\n\r\n",
    ]);
    const p = pool();
    const r = await fetchOnce(p, get(o.port));
    expect(r.error).toBeNull();
    expect(r.body.toString()).toBe("until the end");
    expect(p.idle).toBe(0);
    expect((await fetchOnce(p, get(o.port))).status).toBe(204);
    expect(o.connections).toBe(2);
  });

  it("reads no body after HEAD, 204 and 304, whatever their headers say", async () => {
    const o = await origin([
      "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
    ]);
    const p = pool();
    const head = await fetchOnce(p, get(o.port, { method: "HEAD" }));
    expect(head).toMatchObject({ status: 200, error: null });
    expect(head.body.length).toBe(0);
    expect((await fetchOnce(p, get(o.port))).status).toBe(204);
    const notModified = await fetchOnce(p, get(o.port));
    expect(notModified).toMatchObject({ status: 304, error: null });
    expect(notModified.headers).toContain("ETag");
    // Had any of those been read as having a body, this one would be misframed.
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("done");
    expect(o.connections).toBe(1);
  });

  it("reports 100 Continue, skips other interim responses, and delivers the final one", async () => {
    const o = await origin([
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    ]);
    const r = await fetchOnce(pool(), get(o.port));
    expect(r).toMatchObject({ status: 200, continues: 1, error: null });
    expect(r.headers).toEqual(["Content-Length", "1"]);
  });

  it("does not reuse a connection the origin said it would close, or an HTTP/1.0 one", async () => {
    const o = await origin([
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
      "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
    ]);
    const p = pool();
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("a");
    expect(p.idle).toBe(0);
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("b");
    expect(p.idle).toBe(0);
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("c");
    expect(o.connections).toBe(3);
  });
});

describe("strict framing", () => {
  const bad: Array<[string, string]> = [
    [
      "both Content-Length and Transfer-Encoding",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "conflicting Content-Length values",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    ],
    ["conflicting Content-Length values", "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd"],
    ["invalid Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc"],
    [
      "Transfer-Encoding that does not end in chunked",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    ],
    ["malformed header field", "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n"],
    ["malformed header field", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n"],
    ["malformed header field", "HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n"],
    ["malformed header field", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n"],
    ["malformed header field", "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n"],
    ["malformed header field", "HTTP/1.1 200 OK\r\nNo-Colon\r\nContent-Length: 0\r\n\r\n"],
    ["malformed header field", "HTTP/1.1 200 OK\r\n: no name\r\nContent-Length: 0\r\n\r\n"],
    ["malformed header field", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n"],
    ["malformed trailer field", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T : 1\r\n\r\n"],
    ["malformed status line", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"],
    ["malformed status line", "ICY 200 OK\r\n\r\n"],
    ["malformed chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"],
    ["malformed chunk size line", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n"],
    // Whitespace in a chunk-size line, or an extension that is not name[=token|"quoted"]:
    // Node's parser refuses them all.
    ["malformed chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 ;x=y\r\nx\r\n0\r\n\r\n"],
    [
      "malformed chunk size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;x=y\t\r\nx\r\n0\r\n\r\n",
    ],
    [
      "malformed chunk size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;x=a,b\r\nx\r\n0\r\n\r\n",
    ],
    ["malformed chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;\r\nx\r\n0\r\n\r\n"],
    ["tab in Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1\t\r\n\r\nx"],
    ["tab in Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n"],
    [
      "chunk data not followed by CRLF",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n",
    ],
    [
      "data after the end of the response",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n",
    ],
    ["101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"],
  ];
  for (const [why, reply] of bad) {
    it(`refuses a response with ${why}: ${JSON.stringify(reply.slice(17, 60))}`, async () => {
      const o = await origin([reply]);
      const p = pool();
      const r = await fetchOnce(p, get(o.port));
      expect(r.error?.message).toContain(why);
      expect(p.idle).toBe(0);
    });
  }

  it("refuses a response head larger than the limit", async () => {
    const o = await origin([`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`]);
    const r = await fetchOnce(pool({ maxHeaderBytes: 16 * 1024 }), get(o.port));
    expect(r.error?.message).toContain("response head too large");
  });

  it("fails when the origin closes mid-body, whatever the framing", async () => {
    const o = await origin([
      (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."),
      (s) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc"),
      (s) => s.end("HTTP/1.1 200 OK\r\nContent-"),
    ]);
    const p = pool();
    const a = await fetchOnce(p, get(o.port));
    expect(a.error?.message).toContain("connection closed mid-body");
    expect(a.body.toString()).toBe("only ten..");
    expect((await fetchOnce(p, get(o.port))).error?.message).toContain("connection closed mid-body");
    expect((await fetchOnce(p, get(o.port))).error?.message).toContain("connection closed before a response");
  });

  it("never sends a request target or header that would break its line", () => {
    const p = pool();
    expect(() => p.request(get(1, { target: "/a b" }), new Collector())).toThrow(/cannot be sent/);
    expect(() => p.request(get(1, { target: "/a\r\nX-Evil: 1" }), new Collector())).toThrow(/cannot be sent/);
    expect(() => p.request(get(1, { headers: ["Host", "a\r\nX-Evil: 1"] }), new Collector())).toThrow(
      /cannot be sent/,
    );
  });
});

describe("connections", () => {
  it("says that a connection was refused (the connect timeout is tested through the proxy)", async () => {
    const closed = await origin([]);
    const port = closed.port;
    await closed.stop();
    origins.splice(origins.indexOf(closed), 1);
    const refused = await fetchOnce(pool(), get(port));
    expect(refused.error).toBeInstanceOf(DialError);
    expect((refused.error as DialError).code).toBe("refused");
  });

  it("fails an exchange the origin leaves idle past the idle timeout", async () => {
    const o = await origin([() => {}]);
    const r = await fetchOnce(pool({ idleTimeoutMs: 200 }), get(o.port));
    expect(r.error).toBeInstanceOf(DialError);
    expect(r.error?.message).toContain("idle for 200 ms");
  });

  it("sends a request again on a new connection when a kept-alive one was closed as it was reused", async () => {
    const o = await origin([
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
      // The second request lands on the kept-alive connection, which the origin drops unanswered.
      (s) => s.destroy(),
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
    ]);
    const p = pool();
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("a");
    const again = await fetchOnce(p, get(o.port));
    expect(again.error).toBeNull();
    expect(again.body.toString()).toBe("b");
    expect(o.connections).toBe(2);
    expect(o.seen).toHaveLength(3);
  });

  it("drops an idle pooled connection the origin talks on", async () => {
    const o = await origin([
      (s) => {
        s.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
        setTimeout(() => s.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"), 50);
      },
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
    ]);
    const p = pool();
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("a");
    await new Promise((r) => setTimeout(r, 150));
    expect(p.idle).toBe(0);
    expect((await fetchOnce(p, get(o.port))).body.toString()).toBe("b");
    expect(o.connections).toBe(2);
  });

  it("pools by address and port, so a connection is never reused for another destination", async () => {
    const a = await origin(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"]);
    const b = await origin(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"]);
    const p = pool();
    expect((await fetchOnce(p, get(a.port))).body.toString()).toBe("a");
    expect((await fetchOnce(p, get(b.port))).body.toString()).toBe("b");
    expect(p.idle).toBe(2);
  });
});

describe("bodies and backpressure", () => {
  let server: http.Server | null = null;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = null;
  });

  /** A real HTTP server that answers with the request's framing headers and body length. */
  async function echo(): Promise<number> {
    server = http.createServer((req, res) => {
      let n = 0;
      req.on("data", (c: Buffer) => (n += c.length));
      req.on("end", () => {
        const out = JSON.stringify({
          n,
          te: req.headers["transfer-encoding"] ?? null,
          cl: req.headers["content-length"] ?? null,
        });
        res.writeHead(200, { "content-length": Buffer.byteLength(out) }).end(out);
      });
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    return (server.address() as net.AddressInfo).port;
  }

  it("sends a body chunked when it has no length, and as is with one", async () => {
    const port = await echo();
    const p = pool();
    const send = async (headers: string[], parts: Buffer[]) => {
      const c = new Collector();
      const ex: Exchange = p.request(get(port, { method: "POST", headers, hasBody: true }), c);
      for (const part of parts) ex.write(part);
      ex.end();
      const r = await c.done;
      expect(r.error).toBeNull();
      return JSON.parse(r.body.toString()) as { n: number; te: string | null; cl: string | null };
    };
    const parts = [Buffer.alloc(1000, 1), Buffer.alloc(0), Buffer.alloc(70_000, 2)];
    expect(await send(["Host", "x"], parts)).toEqual({ n: 71_000, te: "chunked", cl: null });
    expect(await send(["Host", "x", "Content-Length", "71000"], parts)).toEqual({
      n: 71_000,
      te: null,
      cl: "71000",
    });
    expect(p.idle).toBe(1);
  });

  it("stops reading while the receiver is full, and goes on after resume", async () => {
    const total = 16 * 1024 * 1024;
    const o = await origin([
      (s) => {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
        s.end(Buffer.alloc(total, 0x61));
      },
    ]);
    const c = new Collector();
    c.accept = false;
    const ex = pool().request(get(o.port), c);
    while (c.received === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    const held = c.received;
    // One read's worth, not the whole body: the socket stopped reading.
    expect(held).toBeLessThan(1024 * 1024);
    c.accept = true;
    ex.resume();
    const r = await c.done;
    expect(r.error).toBeNull();
    expect(r.body.length).toBe(total);
  });

  it("asks the sender to wait while the destination does not read the body, and says when to go on", async () => {
    let origin: net.Socket | null = null;
    let received = 0;
    const server = net.createServer((s) => {
      origin = s;
      // Read the head, then stop reading until told.
      s.once("data", (d: Buffer) => {
        received += d.length;
        s.pause();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    origins.push({ stop: () => new Promise<void>((r) => (origin?.destroy(), server.close(() => r()))) });
    const port = (server.address() as net.AddressInfo).port;
    const total = 256 * 1024 * 1024;
    const block = Buffer.alloc(1024 * 1024, 0x62);
    let sent = 0;
    let ex: Exchange | null = null;
    /** Write until the exchange says wait; called again on every drain. */
    const pump = () => {
      while (sent < total) {
        sent += block.length;
        if (!ex!.write(block)) return;
      }
    };
    const c = new (class extends Collector {
      override onDrain(): void {
        super.onDrain();
        pump();
      }
    })();
    ex = pool().request(
      get(port, { method: "PUT", headers: ["Host", "x", "Content-Length", String(total)], hasBody: true }),
      c,
    );
    pump();
    const settled = async () => {
      // Until nothing moves for 200 ms.
      for (let last = -1; last !== sent; await new Promise((r) => setTimeout(r, 200))) last = sent;
    };
    await settled();
    // The kernel's buffers and the socket's high-water mark took a few MiB; the rest waits.
    const held = sent;
    expect(held).toBeLessThan(total / 4);
    origin!.on("data", (d: Buffer) => (received += d.length));
    origin!.resume();
    await settled();
    expect(sent).toBeGreaterThan(held);
    expect(received).toBeGreaterThan(held - 4 * block.length);
  });

  it("aborting ends the exchange silently and closes its connection", async () => {
    const o = await origin([() => {}]);
    const c = new Collector();
    const p = pool();
    const ex = p.request(get(o.port), c);
    while (o.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    ex.abort();
    await new Promise((r) => setTimeout(r, 50));
    expect(o.sockets[0]!.destroyed || o.sockets[0]!.readableEnded).toBe(true);
    expect(p.idle).toBe(0);
    let settled = false;
    void c.done.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false);
  });
});

describe("through the shield", () => {
  it("passes repeats of one Content-Length on as one field, which Node's client reads", async () => {
    const o = await origin(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"]);
    const t = await startTestShield(
      `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
agents:
  - { id: scout, sources: [127.0.0.1/32], allow: [origin.test, 127.0.0.1/32] }
`,
      new TableResolver({ "origin.test": v4("127.0.0.1") }).resolve,
    );
    origins.push({ stop: () => t.close() });
    const got = await new Promise<{ status: number; raw: string[]; body: string }>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: t.port, path: `http://origin.test:${o.port}/`, agent: false },
        (res) => {
          let body = "";
          res.setEncoding("latin1");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode!, raw: res.rawHeaders, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(got.status).toBe(200);
    expect(got.body).toBe("ok");
    expect(got.raw.filter((h) => h.toLowerCase() === "content-length")).toHaveLength(1);
  });

  it("answers pipelined requests in order, bodies and byte counts intact, one record each", async () => {
    const web = await new Upstream("127.0.0.3").start();
    origins.push(web);
    const token = "pipeline-token";
    const t = await startTestShield(
      `
listen: 127.0.0.1:3128
log: { path: ./unused.db }
agents:
  - { id: scout, token_sha256: "${sha256(token)}", allow: [allowed.test, 127.0.0.3/32] }
`,
      new TableResolver({ "allowed.test": v4("127.0.0.3") }).resolve,
    );
    origins.push({ stop: () => t.close() });
    const auth = `Proxy-Authorization: ${basic("scout", token)}\r\n`;
    const one = (path: string, extra = "") =>
      `GET http://allowed.test:${web.port}${path} HTTP/1.1\r\nHost: allowed.test:${web.port}\r\n${auth}${extra}\r\n`;
    const body = "x".repeat(10);
    const post = `POST http://allowed.test:${web.port}/echo HTTP/1.1\r\nHost: allowed.test:${web.port}\r\n${auth}Transfer-Encoding: chunked\r\n\r\na\r\n${body}\r\n0\r\n\r\n`;
    const { reply } = await rawExchange(
      t.port,
      one("/echo?n=1") + one("/big?n=70000") + post + one("/plain", "Connection: close\r\n"),
      3000,
    );
    const statuses = [...reply.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(["200", "200", "200", "200"]);
    // In order: the echo of the first, 70000 bytes of the second, the echo of the POST, then "ok".
    expect(reply.indexOf('"url":"/echo?n=1"')).toBeLessThan(reply.indexOf("a".repeat(1000)));
    expect(reply.indexOf("a".repeat(1000))).toBeLessThan(reply.indexOf('"method":"POST"'));
    expect(reply.endsWith("ok")).toBe(true);
    // The shield relays them side by side (Node's server queues the answers in order).
    expect(web.requests.map((r) => r.url).sort()).toEqual(["/big?n=70000", "/echo", "/echo?n=1", "/plain"]);
    expect(web.requests.find((r) => r.method === "POST")!.body.toString()).toBe(body);
    const records = await t.sink.waitFor(4);
    expect(records.every((r) => r.decision === "allowed" && r.bytesDown > 0)).toBe(true);
    expect(records.find((r) => r.path === "/big")!.bytesDown).toBe(70_000);
    // The POST's chunked body carries 10 bytes; its head up to the blank line counts too.
    const postUp = post.indexOf("\r\n\r\n") + 2 + 10;
    expect(records.filter((r) => r.bytesUp === postUp)).toHaveLength(1);
  });
});
