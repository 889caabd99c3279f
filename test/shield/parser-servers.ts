/**
 * The shield's own HTTP/1.1 server (front.ts) and Node's `http.Server`, each with handlers that
 * record what the parser read of every connection, for the tests that hold one against the other.
 * Connections are registered with `track`, whatever carries them: a real socket, a stand-in or
 * a stream. The owner of each request takes its body in the connection's `BodyMode`.
 */
import http from "node:http";
import type net from "node:net";
import { FrontServer, type AgentRequest } from "../../src/shield/proxy/front.js";
import type { FrontHandlers, FrontRequest } from "../../src/shield/proxy/front-api.js";

/** One request as a parser handed it over. */
export interface Read {
  kind: "plain" | "connect" | "upgrade";
  method: string;
  url: string;
  /** "1.1", "1.0", or whatever else Node's parser took for a version. */
  version: string;
  rawHeaders: string[];
  /** The decoded body once read to its end; null when it never was (cut, refused, a tunnel). */
  body: string | null;
}

/** What a parser made of one connection's bytes. */
export interface Outcome {
  reads: Read[];
  /** Why each request's body framing was refused (the shield's `ambiguous`), by index in `reads`. */
  ambiguous: Array<string | null>;
  /** Why each request's body could not be read to its end, by index in `reads`. */
  failures: Array<string | null>;
  /** Why the connection's bytes stopped being read: the status refused with, or null. */
  refused: { status: number; reason: string } | null;
  /** The connection was closed (ended or destroyed) by the server. */
  closed: boolean;
  /** What the parser threw out of its socket's handlers, or null. */
  thrown: string | null;
}

/**
 * How the request's owner takes a body: at once and as fast as it comes; stopping after every
 * piece and asking for more a turn later; or only a turn after the head, then as fast as it comes.
 */
export type BodyMode = "eager" | "backpressure" | "late";
export const BODY_MODES: readonly BodyMode[] = ["eager", "backpressure", "late"];

/** The limits the shield's differential tests have always used, for both parsers. */
export const MAX_HEADER_BYTES = 8192;

interface Tracked {
  mode: BodyMode;
  /** How many things the parser did on this connection: quiet when it stops changing. */
  touches: number;
  outcome: Outcome;
  /** The shield's requests, to read each one's `failure` at the end. */
  requests: FrontRequest[];
}

const tracked = new WeakMap<object, Tracked>();

/** Counts everything either parser does, so that a quiet spell can be told from a busy one. */
let activity = 0;
export const touch = () => void activity++;

export const newOutcome = (): Outcome => ({
  reads: [],
  ambiguous: [],
  failures: [],
  refused: null,
  closed: false,
  thrown: null,
});

/** Record what the parsers read of the connection carried by `carrier`. */
export function track(carrier: object, mode: BodyMode): Outcome {
  const t: Tracked = { mode, touches: 0, outcome: newOutcome(), requests: [] };
  tracked.set(carrier, t);
  return t.outcome;
}

/** What was read of the connection carried by `carrier` so far (a copy). */
export function outcomeOf(carrier: object): Outcome {
  const t = tracked.get(carrier);
  if (!t) throw new Error("a connection that was never tracked");
  const o = t.outcome;
  const failures = t.requests.length > 0 ? t.requests.map((r) => r.failure) : o.failures;
  return {
    ...o,
    reads: o.reads.map((r) => ({ ...r })),
    ambiguous: [...o.ambiguous],
    failures: [...failures],
  };
}

/** How many things the parser has done on the connection carried by `carrier`. */
export function touchesOf(carrier: object): number {
  return tracked.get(carrier)?.touches ?? 0;
}

function stateOf(carrier: object): Tracked {
  const t = tracked.get(carrier);
  if (!t) throw new Error("a connection that was never tracked");
  t.touches++;
  return t;
}

/** The owner's behaviour: take the body as `mode` says, answer once it is read. */
function takeBody(
  t: Tracked,
  seen: Read,
  take: (onData: (c: Buffer) => boolean, onEnd: () => void) => void,
  resume: () => void,
  answer: () => void,
): void {
  const chunks: Buffer[] = [];
  const start = () =>
    take(
      (c) => {
        touch();
        t.touches++;
        chunks.push(Buffer.from(c));
        if (t.mode !== "backpressure") return true;
        setImmediate(resume);
        return false;
      },
      () => {
        touch();
        t.touches++;
        seen.body = Buffer.concat(chunks).toString("latin1");
        answer();
      },
    );
  if (t.mode === "late") setImmediate(start);
  else start();
}

const readOf = (
  req: { method?: string; url?: string; rawHeaders: string[] },
  version: string,
  kind: Read["kind"],
): Read => ({
  kind,
  method: req.method ?? "",
  url: req.url ?? "",
  version,
  rawHeaders: req.rawHeaders,
  body: null,
});

/** The version the shield's server read: it keeps only whether it is 1.1. */
const frontVersion = (req: FrontRequest) => ((req as AgentRequest).http11 ? "1.1" : "1.0");

const frontHandlers: FrontHandlers = {
  request(req) {
    touch();
    const t = stateOf(req.socket);
    t.requests.push(req);
    const seen = readOf(req, frontVersion(req), "plain");
    t.outcome.reads.push(seen);
    t.outcome.ambiguous.push(req.ambiguous);
    // As the shield does: a request whose body could end in two places is refused.
    if (req.ambiguous) return req.reply(400, "Bad Request");
    takeBody(
      t,
      seen,
      (d, e) => req.takeBody(d, e),
      () => req.resumeBody(),
      () => req.reply(200, "OK"),
    );
  },
  tunnel(req, socket, _head, kind) {
    touch();
    const t = stateOf(socket);
    t.requests.push(req);
    t.outcome.reads.push(readOf(req, frontVersion(req), kind));
    t.outcome.ambiguous.push(null);
    socket.destroy();
  },
  clientError(err, socket) {
    touch();
    stateOf(socket).outcome.refused = { status: err.status, reason: err.message };
    socket.destroy();
  },
};

export function makeFront(): FrontServer {
  return new FrontServer(
    {
      maxHeaderBytes: MAX_HEADER_BYTES,
      headerTimeoutMs: 5000,
      keepAliveTimeoutMs: 5000,
      idleTimeoutMs: 10_000,
      highWaterMark: 64 * 1024,
    },
    frontHandlers,
  );
}

/** Node's server: llhttp in its strict mode, the reference the shield's parser is held to. */
export function makeNode(): http.Server {
  const node = http.createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    insecureHTTPParser: false,
    requireHostHeader: false,
  });
  node.maxHeadersCount = 0;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    touch();
    const t = stateOf(req.socket);
    // Node closes a connection whose request expected 100 Continue and did not get it, and would
    // read nothing after it: what that leaves unread would say nothing of its parser.
    if (/^100-continue$/i.test(req.headers.expect ?? "")) res.writeContinue();
    const seen = readOf(req, req.httpVersion, "plain");
    t.outcome.reads.push(seen);
    t.outcome.ambiguous.push(null);
    t.outcome.failures.push(null);
    takeBody(
      t,
      seen,
      (onData, onEnd) => {
        req.on("data", (c: Buffer) => {
          if (!onData(c)) req.pause();
        });
        req.on("end", onEnd);
      },
      () => req.resume(),
      // Framed, as the shield's answer is: unframed, Node would close an HTTP/1.0 connection
      // after it and read no request behind it.
      () => res.writeHead(200, { "Content-Length": "3" }).end("OK\n"),
    );
  };
  node.on("request", onRequest);
  // Every request reaches the handler, as under the shield: none is answered by Node itself.
  node.on("checkContinue", onRequest);
  node.on("checkExpectation", onRequest);
  for (const kind of ["connect", "upgrade"] as const) {
    node.on(kind, (req: http.IncomingMessage, socket: net.Socket) => {
      touch();
      const t = stateOf(socket);
      t.outcome.reads.push(readOf(req, req.httpVersion, kind));
      t.outcome.ambiguous.push(null);
      t.outcome.failures.push(null);
      socket.destroy();
    });
  }
  node.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
    touch();
    const reason = (err as { reason?: string }).reason ?? err.message;
    stateOf(socket).outcome.refused ??= { status: err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400, reason };
    // A turn later: the requests read before the fault still deliver the ends of their bodies.
    setImmediate(() => socket.destroy());
  });
  return node;
}

/**
 * Resolves once neither parser has done anything for a few turns of the event loop, or throws
 * after `maxTurns`: a parser busy for that long has hung in a loop of its own.
 */
export async function settle(maxTurns = 20_000): Promise<void> {
  let quiet = 0;
  for (let turn = 0; turn < maxTurns; turn++) {
    const before = activity;
    await new Promise((r) => setImmediate(r));
    quiet = activity === before ? quiet + 1 : 0;
    if (quiet >= 3) return;
  }
  throw new Error(`still busy after ${maxTurns} turns of the event loop`);
}
