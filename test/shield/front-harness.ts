/**
 * Both HTTP/1.1 request parsers in one process, fed byte streams piece by piece without sockets:
 * the shield's own server (front.ts) on a stand-in socket, and Node's `http.Server` on a stream.
 * Thousands of streams, split in any way, can be compared in seconds, and a parser that stops
 * answering is seen as one.
 */
import { EventEmitter } from "node:events";
import type net from "node:net";
import { Duplex } from "node:stream";
import { AgentConnection } from "../../src/shield/proxy/front.js";
import {
  makeFront,
  makeNode,
  outcomeOf,
  settle,
  touch,
  track,
  type BodyMode,
  type Outcome,
} from "./parser-servers.js";

/** Stands in for a net.Socket under one AgentConnection: what it writes is counted, not sent. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  readonly remoteAddress = "127.0.0.1";
  private readonly seen: Outcome;
  private paused = false;
  /** Bytes received but not yet read (the kernel's buffer); null is the client's end. */
  private readonly queue: Array<Buffer | null> = [];

  constructor(mode: BodyMode) {
    super();
    this.seen = track(this, mode);
  }

  deliver(b: Buffer | null): void {
    if (this.destroyed) return;
    this.queue.push(b);
    this.flush();
  }

  setTimeout(): this {
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (this.paused) {
      this.paused = false;
      // As a net.Socket does: what waited is emitted in a later turn, not inside resume().
      process.nextTick(() => this.flush());
    }
    return this;
  }

  write(_data: string | Uint8Array): boolean {
    touch();
    return true;
  }

  cork(): void {}
  uncork(): void {}

  end(data?: string | Uint8Array): this {
    if (data !== undefined) this.write(data);
    this.seen.closed = true;
    return this;
  }

  destroySoon(): void {
    this.end();
    this.destroy();
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.seen.closed = true;
    touch();
    process.nextTick(() => this.emit("close"));
    return this;
  }

  resetAndDestroy(): this {
    return this.destroy();
  }

  private flush(): void {
    while (!this.paused && !this.destroyed && this.queue.length > 0) {
      const b = this.queue.shift()!;
      touch();
      try {
        if (b === null) this.emit("end");
        else this.emit("data", b);
      } catch (err) {
        // On a socket this would be an uncaught exception: the process would go down.
        this.seen.thrown ??= err instanceof Error ? (err.stack ?? err.message) : String(err);
        this.destroy();
      }
    }
  }
}

/** Never listening: its connections are made by hand. */
const front = makeFront();
front.server.close();
const node = makeNode();

/** A connection to either parser: deliver the client's bytes (null: the client is done sending). */
export interface Conn {
  deliver(b: Buffer | null): void;
  /** What the parser read so far. */
  outcome(): Outcome;
}

export function frontConn(mode: BodyMode): Conn {
  const socket = new FakeSocket(mode);
  front.conns.add(new AgentConnection(front, socket as unknown as net.Socket));
  return { deliver: (b) => socket.deliver(b), outcome: () => outcomeOf(socket) };
}

export function nodeConn(mode: BodyMode): Conn {
  const stream = new Duplex({
    read() {},
    write(_chunk, _enc, cb) {
      touch();
      cb();
    },
  });
  const seen = track(stream, mode);
  Object.assign(stream, { setTimeout: () => stream, destroySoon: () => stream.destroy() });
  stream.on("close", () => (seen.closed = true));
  node.emit("connection", stream);
  return {
    deliver: (b) => {
      touch();
      if (!stream.destroyed) stream.push(b);
    },
    outcome: () => outcomeOf(stream),
  };
}

/**
 * Deliver `bytes` in the pieces that `cuts` (ascending offsets) make; after a piece whose
 * `gaps` entry is true, the event loop runs until quiet before the next, as if the network
 * paused there. Then settles.
 */
export async function feed(conn: Conn, bytes: Buffer, cuts: readonly number[], gaps: readonly boolean[]) {
  let from = 0;
  for (const [k, cut] of [...cuts, bytes.length].entries()) {
    if (cut <= from) continue;
    conn.deliver(bytes.subarray(from, cut));
    from = cut;
    if (gaps[k % Math.max(1, gaps.length)]) await settle();
  }
  await settle();
}

/**
 * Feed a whole stream, then the client's end: what was read before the end, and whether the
 * server closed the connection once the client was done (a server that does not, hangs).
 */
export async function readAll(
  conn: Conn,
  bytes: Buffer,
  cuts: readonly number[] = [],
  gaps: readonly boolean[] = [false],
): Promise<{ outcome: Outcome; closedAtEnd: boolean; thrown: string | null }> {
  await feed(conn, bytes, cuts, gaps);
  const outcome = conn.outcome();
  conn.deliver(null);
  await settle();
  const after = conn.outcome();
  return { outcome, closedAtEnd: after.closed, thrown: after.thrown };
}
