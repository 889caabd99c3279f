/**
 * The shield's agent-side HTTP/1.1 server against Node's own strict parser (llhttp), on
 * thousands of request streams mutated from valid ones: stray CR, LF, NUL, spaces and colons,
 * folded lines, duplicated or conflicting framing headers, odd versions and methods, pipelined
 * requests and chunked bodies. The front may refuse more than llhttp, never less: every request
 * it reads must be one llhttp reads the same way (method, target, version, header list, body,
 * and whether it is a tunnel), in the same place in the stream; and what it refuses that llhttp
 * reads, a shared rule or a documented laxity of llhttp's must explain (parser-agreement.ts). A
 * request read where llhttp saw none, or read differently, is how a proxy and a destination come
 * to disagree about where a request ends.
 *
 * Then the same streams through a running shield to a Node destination, with each of its HTTP
 * servers: every request the destination reads must be one the server's parser read (method,
 * target, body) and the rules let through, in order, under the name it was sent to. The shield
 * may refuse some; a request it did not read, or a body cut in another place, reaching the
 * destination would be a smuggled one.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mutant, prng, REQUESTS } from "./differential.js";
import { listenPair, sendTcp, type Listening } from "./front-tcp.js";
import { departure, judged } from "./parser-agreement.js";
import type { Outcome, Read } from "./parser-servers.js";
import { HTTP_SERVERS, startTestShield, type HttpServerName } from "./proxy-harness.js";

let front: Listening;
let node: Listening;

beforeAll(async () => {
  ({ front, node } = await listenPair("eager"));
});

afterAll(async () => {
  await Promise.all([front?.close(), node?.close()]);
});

describe("the front reads no request that Node's parser reads differently", () => {
  it("over 3,000 mutated request streams", async () => {
    const rand = prng(0x5eed);
    const inputs = Array.from({ length: 3000 }, () => mutant(rand, REQUESTS));
    const found: string[] = [];
    let read = 0;
    for (let i = 0; i < inputs.length; i += 100) {
      await Promise.all(
        inputs.slice(i, i + 100).map(async (text) => {
          const bytes = Buffer.from(text, "latin1");
          const [ours, theirs] = await Promise.all([sendTcp(front.port, bytes), sendTcp(node.port, bytes)]);
          read += ours.outcome.reads.filter((_, k) => !ours.outcome.ambiguous[k]).length;
          const d = departure(ours.outcome, theirs.outcome, text);
          if (d || ours.hung) found.push(`${JSON.stringify(text)}: ${d ?? "the front hung"}`);
        }),
      );
    }
    expect(found.slice(0, 5)).toEqual([]);
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

/**
 * Send bytes to the shield on a new connection; resolves once it closed, or sent nothing for
 * `quietMs`. Ending early only means less reaches the origin: never a request the front did not read.
 */
function sendToShield(port: number, bytes: Buffer, quietMs: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    s.on("error", () => {});
    s.on("data", quiet);
    s.once("connect", () => {
      s.write(bytes);
      quiet();
    });
    s.once("close", done);
  });
}

/**
 * The requests the shield may forward of a stream: those its server's parser read and did not
 * refuse. Node's server under the shield serves what llhttp read up to the first request the
 * rules refuse, or the connection's last.
 */
function forwardable(server: HttpServerName, outcome: Outcome): Read[] {
  if (server === "clawguard") return outcome.reads.filter((_, k) => !outcome.ambiguous[k]);
  const out: Read[] = [];
  for (const r of outcome.reads) {
    const { refusal, last } = judged(r);
    if (refusal !== null) break;
    out.push(r);
    if (last) break;
  }
  return out;
}

let originPort = 0;

beforeAll(async () => {
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  originPort = (origin.address() as net.AddressInfo).port;
});

afterAll(() => {
  origin.closeAllConnections();
  origin.close();
});

describe.each(HTTP_SERVERS)(
  "what a destination reads through the shield with the %s HTTP server",
  (server) => {
    it("is what its parser read and the rules let through, and nothing else, over 1,500 mutated request streams, some pipelined", async () => {
      atOrigin.clear();
      const resolver = async (host: string) => {
        if (!/^[ij]\d+n?\.test$/.test(host))
          throw Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" });
        return [{ address: "127.0.0.1", family: 4 as const }];
      };
      const t = await startTestShield(
        "listen: 127.0.0.1:3128\nlog: { path: ./unused.db }\nagents:\n  - { id: probe, sources: [127.0.0.1/32], allow: ['*.test', 127.0.0.1/32] }\n",
        resolver,
        { httpServer: server },
      );
      try {
        const rand = prng(0x5eed);
        // Each stream names destinations of its own, so what reached the origin can be told apart.
        // Names of their own for each server's run, so that one run's requests cannot pass for another's.
        const tag = server === "clawguard" ? "" : "n";
        // A third of them two or three requests back to back: a refusal between requests that
        // are served is where one server reading ahead could let a later one through.
        const inputs = Array.from({ length: 1500 }, (_, n) =>
          Array.from({ length: n % 3 === 2 ? 2 + (n % 2) : 1 }, () => mutant(rand, REQUESTS))
            .join("")
            .replaceAll("a.test", `i${n}${tag}.test:${originPort}`)
            .replaceAll("b.test", `j${n}${tag}.test:${originPort}`),
        );
        const found: string[] = [];
        let forwarded = 0;
        const one = async (text: string, n: number) => {
          const bytes = Buffer.from(text, "latin1");
          const { outcome } = await sendTcp(server === "clawguard" ? front.port : node.port, bytes);
          const read = forwardable(server, outcome);
          await sendToShield(t.port, bytes, 300);
          // A tunnel or upgrade carries raw bytes to its destination by design: nothing to compare.
          if (read.some((r) => r.kind !== "plain")) return;
          for (const host of [`i${n}${tag}.test:${originPort}`, `j${n}${tag}.test:${originPort}`]) {
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
          inputs.flatMap((_, n) => [`i${n}${tag}.test:${originPort}`, `j${n}${tag}.test:${originPort}`]),
        );
        for (const [host, got] of atOrigin)
          if (!names.has(host))
            found.push(`the origin read ${JSON.stringify(got)} for Host ${JSON.stringify(host)}`);
        expect(found.slice(0, 5)).toEqual([]);
        expect(forwarded).toBeGreaterThan(200);
      } finally {
        await t.close();
      }
    }, 240_000);
  },
);
