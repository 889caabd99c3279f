/**
 * The shield's agent-side HTTP/1.1 server against Node's own strict parser (llhttp), on
 * thousands of request streams mutated from valid ones: stray CR, LF, NUL, spaces and colons,
 * folded lines, duplicated or conflicting framing headers, odd versions and methods, pipelined
 * requests and chunked bodies. The front may refuse more than llhttp, never less: every request
 * it reads must be one llhttp reads the same way (method, target, header list, body, and whether
 * it is a tunnel), in the same place in the stream. A request read where llhttp saw none, or
 * read differently, is how a proxy and a destination come to disagree about where a request
 * ends.
 *
 * Then the same streams through a running shield to a Node destination: every request the
 * destination reads must be one the front read (method, target, body), in order, under the name
 * it was sent to. The shield may refuse some; a request it did not read, or a body cut in another
 * place, reaching the destination would be a smuggled one.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrontServer } from "../../src/shield/proxy/front.js";
import { FRAMING_HEADERS, mutant, ODD_HEADERS, prng, type MutationSpec } from "./differential.js";
import { startTestShield } from "./proxy-harness.js";

interface Seen {
  kind: "plain" | "connect" | "upgrade";
  method: string;
  url: string;
  rawHeaders: string[];
  /** The decoded body, once read to its end (a later parse error may cut it off). */
  body: string | null;
}

/** What each server read, per connection, keyed by the client's local port. */
type Log = Map<number, Seen[]>;

function record(log: Log, socket: net.Socket, seen: Seen): Seen {
  const port = socket.remotePort!;
  const list = log.get(port) ?? [];
  list.push(seen);
  log.set(port, list);
  return seen;
}

const frontLog: Log = new Map();
const nodeLog: Log = new Map();
let front: FrontServer;
let node: http.Server;
let frontPort = 0;
let nodePort = 0;

beforeAll(async () => {
  front = new FrontServer(
    {
      maxHeaderBytes: 8192,
      headerTimeoutMs: 5000,
      keepAliveTimeoutMs: 5000,
      idleTimeoutMs: 10_000,
      highWaterMark: 64 * 1024,
    },
    {
      request(req) {
        // A request whose body could end in two places is refused, as the shield does.
        if (req.ambiguous) return req.reply(400, "Bad Request");
        const chunks: Buffer[] = [];
        const seen = record(frontLog, req.socket, {
          kind: "plain",
          method: req.method,
          url: req.url,
          rawHeaders: req.rawHeaders,
          body: null,
        });
        req.takeBody(
          (c) => (chunks.push(Buffer.from(c)), true),
          () => {
            seen.body = Buffer.concat(chunks).toString("latin1");
            req.reply(200, "OK");
          },
        );
      },
      tunnel(req, socket, _head, kind) {
        record(frontLog, socket, {
          kind,
          method: req.method,
          url: req.url,
          rawHeaders: req.rawHeaders,
          body: null,
        });
        socket.destroy();
      },
      clientError(_err, socket) {
        socket.destroy();
      },
    },
  );
  node = http.createServer({ maxHeaderSize: 8192, insecureHTTPParser: false });
  node.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    const seen = record(nodeLog, req.socket, {
      kind: "plain",
      method: req.method!,
      url: req.url!,
      rawHeaders: req.rawHeaders,
      body: null,
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.body = Buffer.concat(chunks).toString("latin1");
      res.end("OK\n");
    });
  });
  for (const kind of ["connect", "upgrade"] as const) {
    node.on(kind, (req: http.IncomingMessage, socket: net.Socket) => {
      record(nodeLog, socket, {
        kind,
        method: req.method!,
        url: req.url!,
        rawHeaders: req.rawHeaders,
        body: null,
      });
      socket.destroy();
    });
  }
  node.on("clientError", (_err: Error, socket: net.Socket) => socket.destroy());
  const listen = (server: net.Server) =>
    new Promise<number>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)),
    );
  frontPort = await listen(front.server);
  nodePort = await listen(node);
});

afterAll(async () => {
  front?.server.close();
  node?.closeAllConnections();
  node?.close();
});

const BASES = [
  "GET http://a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n",
  "POST http://a.test/u HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello",
  "POST http://a.test/u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n",
  "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
  "GET http://a.test/ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  "GET http://a.test/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
];

const HEADERS = [
  ...FRAMING_HEADERS,
  "Host: b.test",
  "Connection: close",
  "Connection: upgrade",
  "Upgrade: h2c",
  "Expect: 100-continue",
  ...ODD_HEADERS,
];

/** 1 to 3 mutations of a base request, sometimes followed by a second request. */
const REQUESTS: MutationSpec = {
  bases: BASES,
  headers: HEADERS,
  // After the request line.
  headerAt: (s) => s.indexOf("\r\n") + 2,
  swaps: [
    [/HTTP\/1\.[01]/, ["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/1"]],
    [/^[A-Z]+/, ["get", "GE T", "PUT", "CONNECT", "G\x01T", "HEAD", "OPTIONS"]],
  ],
  // Body bytes that look like a request, or a chunk size line.
  tails: ["GET http://b.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n", "0\r\n\r\n", "5\r\nworld\r\n0\r\n\r\n", "x"],
  headBias: 0.8,
};

/**
 * Send bytes on a new connection to `port`; resolves with the client's port once the server
 * closed, or once it has sent nothing for `quietMs` (every request a server reads is answered).
 */
function send(port: number, bytes: Buffer, quietMs: number): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let local = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(local);
    };
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    s.on("error", () => {});
    s.on("data", quiet);
    s.once("connect", () => {
      local = s.localPort!;
      s.write(bytes);
      quiet();
    });
    s.once("close", done);
  });
}

/** Where the front read a request that Node's parser did not read the same way, or null. */
async function compare(text: string, quietMs: number): Promise<string | null> {
  const bytes = Buffer.from(text, "latin1");
  const [fp, np] = await Promise.all([send(frontPort, bytes, quietMs), send(nodePort, bytes, quietMs)]);
  const ours = frontLog.get(fp) ?? [];
  const theirs = nodeLog.get(np) ?? [];
  frontLog.delete(fp);
  nodeLog.delete(np);
  read += ours.length;
  for (const [k, seen] of ours.entries()) {
    const ref = theirs[k];
    // Bodies are compared where both read one to its end.
    const same =
      ref !== undefined &&
      JSON.stringify({ ...seen, body: null }) === JSON.stringify({ ...ref, body: null }) &&
      (seen.body === null || ref.body === null || seen.body === ref.body);
    if (!same)
      return `${JSON.stringify(text)}: front read ${JSON.stringify(seen)}, Node ${JSON.stringify(ref ?? null)}`;
  }
  return null;
}

let read = 0;

describe("the front reads no request that Node's parser reads differently", () => {
  it("over 3,000 mutated request streams", async () => {
    const rand = prng(0x5eed);
    const inputs = Array.from({ length: 3000 }, () => mutant(rand, REQUESTS));
    const suspects: string[] = [];
    for (let i = 0; i < inputs.length; i += 100) {
      const batch = inputs.slice(i, i + 100);
      const found = await Promise.all(batch.map((text) => compare(text, 150)));
      found.forEach((f, j) => f && suspects.push(batch[j]!));
    }
    // On a loaded machine a server may still be reading when the window closes: a difference
    // counts only if it shows again with the input sent alone and a long window.
    // (A real difference shows in many inputs: the first 40 are enough to name it.)
    const confirmed: string[] = [];
    for (const text of suspects.slice(0, 40)) {
      const again = await compare(text, 1000);
      if (again) confirmed.push(again);
    }
    expect(confirmed.slice(0, 5)).toEqual([]);
    // The mutations leave enough valid requests for the comparison to mean something.
    expect(read).toBeGreaterThan(500);
  }, 180_000);
});

/** Complete requests a destination behind the shield read, by the Host the shield sent. */
const atOrigin = new Map<string, Array<{ method: string; url: string; body: string }>>();
const origin = http.createServer({ maxHeaderSize: 16384 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const host = req.headers.host ?? "";
    const list = atOrigin.get(host) ?? [];
    list.push({ method: req.method!, url: req.url!, body: Buffer.concat(chunks).toString("latin1") });
    atOrigin.set(host, list);
    res.end("ok");
  });
});

/** The origin-form (path and query) of an absolute URL as the front read it, and its authority. */
function split(url: string): { authority: string; path: string } | null {
  const m = /^http:\/\/([^/?#]*)([^#]*)/i.exec(url);
  if (!m) return null;
  const rest = m[2] || "/";
  return { authority: m[1]!.toLowerCase(), path: rest.startsWith("?") ? `/${rest}` : rest };
}

describe("what a destination reads of requests through the shield", () => {
  it("is what the front read, and nothing else, over 2,000 mutated request streams", async () => {
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
    const originPort = (origin.address() as net.AddressInfo).port;
    const resolver = async (host: string) => {
      if (!/^[ij]\d+\.test$/.test(host)) throw Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" });
      return [{ address: "127.0.0.1", family: 4 as const }];
    };
    const t = await startTestShield(
      "listen: 127.0.0.1:3128\nlog: { path: ./unused.db }\nagents:\n  - { id: probe, sources: [127.0.0.1/32], allow: ['*.test', 127.0.0.1/32] }\n",
      resolver,
    );
    try {
      const rand = prng(0x5eed);
      // Each stream names destinations of its own, so what reached the origin can be told apart.
      const inputs = Array.from({ length: 2000 }, (_, n) =>
        mutant(rand, REQUESTS)
          .replaceAll("a.test", `i${n}.test:${originPort}`)
          .replaceAll("b.test", `j${n}.test:${originPort}`),
      );
      const found: string[] = [];
      let forwarded = 0;
      const one = async (text: string, n: number) => {
        const bytes = Buffer.from(text, "latin1");
        const fp = await send(frontPort, bytes, 150);
        const read = frontLog.get(fp) ?? [];
        frontLog.delete(fp);
        await send(t.port, bytes, 300);
        // A tunnel or upgrade carries raw bytes to its destination by design: nothing to compare.
        if (read.some((r) => r.kind !== "plain")) return;
        for (const host of [`i${n}.test:${originPort}`, `j${n}.test:${originPort}`]) {
          const expected = read
            .filter((r) => r.body !== null && split(r.url)?.authority === host)
            .map((r) => ({ method: r.method, url: split(r.url)!.path, body: r.body! }));
          const got = atOrigin.get(host) ?? [];
          forwarded += got.length;
          // In order, each one a request the front read; the shield may refuse some, add none.
          let k = 0;
          for (const g of got) {
            while (k < expected.length && JSON.stringify(expected[k]) !== JSON.stringify(g)) k++;
            if (k === expected.length) {
              found.push(
                `${JSON.stringify(text)}: the origin read ${JSON.stringify(g)}, the front ${JSON.stringify(expected)}`,
              );
              break;
            }
            k++;
          }
        }
      };
      for (let i = 0; i < inputs.length; i += 50)
        await Promise.all(inputs.slice(i, i + 50).map((text, j) => one(text, i + j)));
      // Nothing reached the origin under a name no stream sent it to.
      const names = new Set(
        inputs.flatMap((_, n) => [`i${n}.test:${originPort}`, `j${n}.test:${originPort}`]),
      );
      for (const [host, got] of atOrigin)
        if (!names.has(host))
          found.push(`the origin read ${JSON.stringify(got)} for Host ${JSON.stringify(host)}`);
      expect(found.slice(0, 5)).toEqual([]);
      expect(forwarded).toBeGreaterThan(300);
    } finally {
      await t.close();
      origin.closeAllConnections();
      origin.close();
    }
  }, 240_000);
});
