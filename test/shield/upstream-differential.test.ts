/**
 * The shield's destination-side HTTP/1.1 client against Node's own strict parser (llhttp), on
 * thousands of response streams mutated from valid ones: stray CR, LF, NUL, spaces and colons,
 * folded lines, duplicated or conflicting framing headers, odd versions and status lines,
 * interim responses, chunked bodies and bytes after the end. The shield's client may refuse more
 * than llhttp, never less: every response it reads to its end must be one llhttp reads the same
 * way (status, header list, body). A response read where llhttp saw another, or a body cut in
 * another place, is how a destination could slip bytes past the shield's framing into what the
 * agent reads next.
 *
 * Then the same responses through a running shield to Node's client as the agent: it must read
 * what the shield's client read (the framing the shield writes itself aside), a 502, or no
 * complete response at all. Where the shield refused only bytes after a complete response, the
 * agent may have that response, as it was framed: never a truncated body that looks whole.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UpstreamPool, type UpstreamHandler } from "../../src/shield/proxy/upstream.js";
import { startTestShield } from "./proxy-harness.js";
import { FRAMING_HEADERS, mutant, ODD_HEADERS, prng, type MutationSpec } from "./differential.js";

interface Seen {
  status: number;
  headers: string[];
  body: string;
}

type Outcome = { ok: true; seen: Seen } | { ok: false; error: string };

/** The origin answers `GET /id` with the bytes stored under id, then closes the connection. */
const answers = new Map<string, Buffer>();
let serial = 0;

function serve(text: string): string {
  const id = `r${++serial}`;
  answers.set(id, Buffer.from(text, "latin1"));
  return id;
}
let origin: net.Server;
let port = 0;

beforeAll(async () => {
  origin = net.createServer((s) => {
    s.on("error", () => {});
    let head = "";
    s.on("data", (b: Buffer) => {
      head += b.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      // The request target names the response to send.
      const id = /^[A-Z]+ \/(\S+) /.exec(head)?.[1] ?? "";
      const bytes = answers.get(id);
      if (bytes) s.end(bytes);
      else s.destroy();
    });
  });
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  port = (origin.address() as net.AddressInfo).port;
});

afterAll(() => {
  origin?.close();
});

const pool = new UpstreamPool({ connectTimeoutMs: 2000, idleTimeoutMs: 5000, maxHeaderBytes: 16384 });

/** What the shield's client reads of `text` sent by the origin. */
function viaShield(text: string, method: string): Promise<Outcome> {
  const id = serve(text);
  return new Promise((resolve) => {
    let status = 0;
    let headers: string[] = [];
    const chunks: Buffer[] = [];
    const handler: UpstreamHandler = {
      onContinue() {},
      onResponse(s, _reason, raw) {
        status = s;
        headers = raw;
      },
      onData(chunk) {
        chunks.push(Buffer.from(chunk));
        return true;
      },
      onEnd() {
        answers.delete(id);
        resolve({ ok: true, seen: { status, headers, body: Buffer.concat(chunks).toString("latin1") } });
      },
      onError(err) {
        answers.delete(id);
        resolve({ ok: false, error: err.message });
      },
      onDrain() {},
    };
    pool.request(
      { address: "127.0.0.1", port, method, target: `/${id}`, headers: ["Host", "a.test"], hasBody: false },
      handler,
    );
  });
}

/**
 * What Node's client reads of `text` sent by the origin, directly or through a proxy on
 * `proxyPort`. With `framedOnly`, a response counts once it is complete, whatever error the bytes
 * after it raise: what a client had been given before it saw them.
 */
function viaNode(
  text: string,
  method: string,
  opts: { proxyPort?: number; framedOnly?: boolean } = {},
): Promise<Outcome> {
  const id = serve(text);
  const at = opts.proxyPort
    ? { port: opts.proxyPort, path: `http://127.0.0.1:${port}/${id}`, headers: { host: `127.0.0.1:${port}` } }
    : { port, path: `/${id}` };
  return new Promise((resolve) => {
    let settled = false;
    const settle = (o: Outcome) => {
      if (settled) return;
      settled = true;
      answers.delete(id);
      resolve(o);
    };
    let responded = false;
    const req = http.request(
      { host: "127.0.0.1", ...at, method, agent: false, maxHeaderSize: 16384 },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        const done = () =>
          settle({
            ok: true,
            seen: {
              status: res.statusCode!,
              headers: res.rawHeaders,
              body: Buffer.concat(chunks).toString("latin1"),
            },
          });
        // A body cut short by the close is an error, not an end, for a framed response.
        const ended = (error: string) => (res.complete ? done() : settle({ ok: false, error }));
        res.on("data", (c: Buffer) => chunks.push(c));
        if (opts.framedOnly) {
          // Bytes after the response may raise an error before its data is delivered: wait for all of it.
          res.on("close", () => ended("incomplete"));
          return;
        }
        res.on("error", (err) => settle({ ok: false, error: err.message }));
        res.on("aborted", () => settle({ ok: false, error: "aborted" }));
        res.on("end", () => ended("incomplete"));
      },
    );
    req.on("error", (err) => {
      if (!(opts.framedOnly && responded)) settle({ ok: false, error: err.message });
    });
    req.end();
  });
}

const BASES = [
  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
  "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
  "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
  "HTTP/1.0 200 OK\r\n\r\nuntil the close",
  "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
];

const HEADERS = [...FRAMING_HEADERS, "Connection: close", "Connection: keep-alive", ...ODD_HEADERS];

/** Where the final response's head starts: after any interim (1xx) ones. */
function finalHead(text: string): number {
  let from = 0;
  for (;;) {
    const end = text.indexOf("\r\n\r\n", from);
    if (end < 0 || !/^HTTP\/1\.[01] 1\d\d/.test(text.slice(from, from + 12))) return from;
    from = end + 4;
  }
}

const RESPONSES: MutationSpec = {
  bases: BASES,
  headers: HEADERS,
  // After the status line of the final response (after an interim one).
  headerAt: (s) => s.indexOf("\r\n", finalHead(s)) + 2,
  swaps: [
    [
      /^HTTP\/1\.[01] \d{3}/,
      ["HTTP/1.0 200", "HTTP/1.1 999", "HTTP/2.0 200", "http/1.1 200", "HTTP/1.1  200", "HTTP/1 200"],
    ],
    [/ (OK|Continue|No Content|Not Found|Not Modified)\r\n/, [" \r\n", "\r\n", " O\tK\r\n"]],
  ],
  // Bytes after the response that look like a second one, or like more body.
  tails: ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", "0\r\n\r\n", "5\r\nworld\r\n0\r\n\r\n", "x"],
  headBias: 0.7,
};

/** Where the shield read a response that Node's parser did not read the same way, or null. */
async function compare(text: string, method: string): Promise<string | null> {
  const ours = await viaShield(text, method);
  if (!ours.ok) return null;
  read += 1;
  // Repeats of one Content-Length are read as one, and the shield passes on a single field:
  // Node, which refuses the repeats, must read that single field's message the same way.
  const single = oneContentLength(text, ours.seen.headers);
  const theirs = await viaNode(single ?? text, method);
  if (theirs.ok && JSON.stringify(ours.seen) === JSON.stringify(theirs.seen)) return null;
  return `${method} ${JSON.stringify(text)}: shield read ${JSON.stringify(ours.seen)}, Node ${JSON.stringify(theirs)}`;
}

/**
 * The response with its last head's Content-Length fields replaced by the one the shield passed
 * on, where it had several or a list; null where there is nothing to replace.
 */
function oneContentLength(text: string, headers: string[]): string | null {
  const at = headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === "content-length");
  if (at < 0) return null;
  const from = finalHead(text);
  const end = text.indexOf("\r\n\r\n", from);
  if (end < 0) return null;
  const lines = text.slice(from, end).split("\r\n");
  const fields = lines.filter((l) => /^content-length:/i.test(l));
  if (fields.length < 2 && !fields.some((l) => l.includes(","))) return null;
  let kept = false;
  const out = lines.flatMap((l) => {
    if (!/^content-length:/i.test(l)) return [l];
    if (kept) return [];
    kept = true;
    return [`${headers[at]}: ${headers[at + 1]}`];
  });
  return text.slice(0, from) + out.join("\r\n") + text.slice(end);
}

let read = 0;

describe("the shield's client reads no response that Node's parser reads differently", () => {
  it("over 6,000 mutated responses", async () => {
    const rand = prng(0xfeed);
    const inputs = Array.from({ length: 6000 }, () => ({
      text: mutant(rand, RESPONSES),
      method: rand() < 0.1 ? "HEAD" : "GET",
    }));
    const found: string[] = [];
    for (let i = 0; i < inputs.length; i += 100) {
      const batch = inputs.slice(i, i + 100);
      for (const f of await Promise.all(batch.map((x) => compare(x.text, x.method)))) if (f) found.push(f);
    }
    expect(found.slice(0, 5)).toEqual([]);
    // The mutations leave enough valid responses for the comparison to mean something.
    expect(read).toBeGreaterThan(1000);
  }, 180_000);
});

/** Framing the shield writes itself for the agent's connection: not part of what it read. */
const FRAMING = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
]);
const unframed = (headers: string[]) =>
  headers.flatMap((h, i) => (i % 2 === 0 && !FRAMING.has(h.toLowerCase()) ? [h, headers[i + 1]!] : []));

function sameResponse(a: Seen, b: Seen): boolean {
  return (
    a.status === b.status &&
    a.body === b.body &&
    JSON.stringify(unframed(a.headers)) === JSON.stringify(unframed(b.headers))
  );
}

describe("what an agent reads through the shield", () => {
  it("is what the shield's client read, or a 502, or no complete response: over 2,000 mutated responses", async () => {
    const t = await startTestShield(
      "listen: 127.0.0.1:3128\nlog: { path: ./unused.db }\nagents:\n  - { id: probe, sources: [127.0.0.1/32], allow: [127.0.0.1/32] }\n",
    );
    try {
      const rand = prng(0xbeef);
      const inputs = Array.from({ length: 2000 }, () => ({
        text: mutant(rand, RESPONSES),
        method: rand() < 0.1 ? "HEAD" : "GET",
      }));
      const found: string[] = [];
      let complete = 0;
      let refused = 0;
      const one = async ({ text, method }: { text: string; method: string }) => {
        const [ours, agent] = await Promise.all([
          viaShield(text, method),
          viaNode(text, method, { proxyPort: t.port }),
        ]);
        const say = () =>
          `${method} ${JSON.stringify(text)}: shield read ${JSON.stringify(ours)}, the agent ${JSON.stringify(agent)}`;
        if (!ours.ok) {
          // Refused by the shield: a 502, or a connection cut before the response was complete.
          refused += 1;
          if (!agent.ok || agent.seen.status === 502) return;
          // Or, where only bytes after a complete response were refused, that response as it
          // was framed: what Node reads from the destination directly, before the stray bytes.
          // (Repeats of one Content-Length passed on as one field, as in the test above.)
          const single = oneContentLength(text, agent.seen.headers);
          const direct = await viaNode(single ?? text, method, { framedOnly: true });
          if (
            !/data after the end of the response/.test(ours.error) ||
            !direct.ok ||
            !sameResponse(agent.seen, direct.seen)
          )
            found.push(say());
          return;
        }
        complete += 1;
        if (!agent.ok || !sameResponse(agent.seen, ours.seen)) found.push(say());
      };
      for (let i = 0; i < inputs.length; i += 50) await Promise.all(inputs.slice(i, i + 50).map(one));
      expect(found.slice(0, 5)).toEqual([]);
      expect(complete).toBeGreaterThan(300);
      expect(refused).toBeGreaterThan(300);
    } finally {
      await t.close();
    }
  }, 180_000);
});
