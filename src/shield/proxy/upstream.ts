/**
 * The shield's HTTP/1.1 client for plain (absolute-form) requests: one request at a time per
 * connection, kept-alive connections pooled per checked address and port, and a response parser
 * that frames strictly. It replaces `http.request` and `http.Agent`, whose per-request objects,
 * listeners, timers and stream plumbing cost more CPU than everything else the shield does.
 *
 * Framing follows RFC 9112 §6.3: no body after HEAD, 1xx, 204 and 304; chunked when
 * Transfer-Encoding ends in chunked; else exactly Content-Length bytes; else until the
 * connection closes. Anything that could be split two ways is an error, never a guess: a
 * response with both Content-Length and Transfer-Encoding, Content-Length values that disagree,
 * a Transfer-Encoding not ending in chunked, a tab around either value, obsolete line folding,
 * bare LF, control characters in the head, a malformed chunk size or extension, bytes after the
 * response. Nothing is read that Node's own parser would read differently (a differential test
 * holds it to that); repeats of one Content-Length are read as that one and passed on as one
 * field. A connection goes back to the pool only after a complete, well-framed response to a
 * completely sent request.
 *
 * One file past the usual length, on purpose: the pool, its connections and the exchange's
 * parser share private state (which exchange owns a connection, when it may go back to the
 * pool, when it must be destroyed); split, each part would export the others' internals.
 */
import type net from "node:net";
import { asDialError, DialError, dialSocket } from "../net/dial.js";
import { ChunkedBody, contentLength, DIGITS, endsInChunked, hasTab, pushField } from "./http1.js";

/** What one exchange tells its owner; exactly one of `onEnd` / `onError` ends it. */
export interface UpstreamHandler {
  /** The destination sent 100 Continue. */
  onContinue(): void;
  /** Status line and header list (name, value, ...) of the final response. */
  onResponse(status: number, reason: string, rawHeaders: string[]): void;
  /** A piece of the (de-chunked) body; false stops reading until `resume()`. */
  onData(chunk: Buffer): boolean;
  /** The response is complete. */
  onEnd(): void;
  /** The exchange failed; `DialError` for connect failures and timeouts. */
  onError(err: Error): void;
  /** The request body may be written again after `write` returned false. */
  onDrain(): void;
  /**
   * An upgrade request was answered 101: the socket is the handler's from now on, with the
   * response head as received and the bytes that followed it. Only for `upgrade` requests.
   */
  onUpgrade?(socket: net.Socket, head: Buffer, rest: Buffer): void;
}

export interface UpstreamRequest {
  /** An already checked IP address: the only one dialled. */
  address: string;
  port: number;
  method: string;
  /** Origin-form target: path and query. */
  target: string;
  /** Header list (name, value, ...) without hop-by-hop headers; Host first. */
  headers: readonly string[];
  /** Whether a body follows (`write`/`end`); sent as is with Content-Length, else chunked. */
  hasBody: boolean;
  /**
   * Asks to switch protocols (WebSocket): sent on a connection of its own, never pooled; a 101
   * hands the socket to `onUpgrade`, any other answer is read as a response like any other.
   */
  upgrade?: boolean;
}

export interface UpstreamOptions {
  connectTimeoutMs: number;
  /** No byte either way for this long fails an exchange, and closes a pooled connection. */
  idleTimeoutMs: number;
  /** Largest response head (status line and headers) accepted. */
  maxHeaderBytes: number;
  /** Idle connections kept per address and port. */
  maxFreePerOrigin?: number;
}

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
const LAST_CHUNK = "0\r\n\r\n";

// Control characters are exactly what these patterns refuse (HTAB aside).
/* eslint-disable no-control-regex */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
/** A request target or Host value that could break out of its line. */
const UNSAFE_IN_HEAD = /[\x00-\x20\x7f]/;
const LINE_BREAK = /[\r\n\0]/;
/* eslint-enable no-control-regex */

/** A malformed or unframeable response. */
export class UpstreamProtocolError extends Error {
  constructor(message: string) {
    super(`bad response from the destination: ${message}`);
    this.name = "UpstreamProtocolError";
  }
}

const enum State {
  Idle,
  Head,
  Length,
  Chunked,
  UntilClose,
  Done,
}

/** Idle kept-alive connections, per address and port. */
export class UpstreamPool {
  private readonly free = new Map<string, Connection[]>();
  private readonly maxFree: number;
  private closed = false;

  constructor(readonly opts: UpstreamOptions) {
    this.maxFree = opts.maxFreePerOrigin ?? 256;
  }

  /** Start an exchange; the head is sent at once, a body follows through the returned exchange. */
  request(req: UpstreamRequest, handler: UpstreamHandler): Exchange {
    if (UNSAFE_IN_HEAD.test(req.target) || UNSAFE_IN_HEAD.test(req.method))
      throw new Error("request target or method cannot be sent as is");
    let head = `${req.method} ${req.target} HTTP/1.1\r\n`;
    let hasLength = false;
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!;
      const value = h[i + 1]!;
      if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
      // Values the front's strict parser read are clean; Host comes from the request target.
      if (LINE_BREAK.test(value)) throw new Error(`header ${name} cannot be sent as is`);
      head += `${name}: ${value}\r\n`;
    }
    const chunked = req.hasBody && !hasLength;
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
    const ex = new Exchange(this, req, head, chunked, handler);
    ex.start(req.upgrade ? null : this.take(req.address, req.port));
    return ex;
  }

  /** Close every idle connection and keep none from now on. */
  close(): void {
    this.closed = true;
    for (const list of this.free.values()) for (const c of list) c.socket.destroy();
    this.free.clear();
  }

  /** Idle connections held now (for tests and metrics). */
  get idle(): number {
    let n = 0;
    for (const list of this.free.values()) n += list.length;
    return n;
  }

  /** A kept-alive connection to exactly this address and port, or null. */
  private take(address: string, port: number): Connection | null {
    const k = key(address, port);
    const list = this.free.get(k);
    if (!list) return null;
    // Newest first: the one least likely to have been closed by the destination meanwhile.
    const conn = list.pop() ?? null;
    if (list.length === 0) this.free.delete(k);
    return conn;
  }

  /** @internal a new connection, owned by `ex` until released. */
  dial(address: string, port: number): Connection {
    const socket = dialSocket(address, port, this.opts.connectTimeoutMs);
    return new Connection(this, socket, key(address, port));
  }

  /** @internal an exchange is done with a connection that may carry another request. */
  release(conn: Connection): void {
    const list = this.free.get(conn.key);
    if (this.closed || conn.socket.destroyed || (list && list.length >= this.maxFree)) {
      conn.socket.destroy();
      return;
    }
    conn.exchange = null;
    if (list) list.push(conn);
    else this.free.set(conn.key, [conn]);
  }

  /** @internal a pooled connection closed or misbehaved. */
  forget(conn: Connection): void {
    const list = this.free.get(conn.key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.free.delete(conn.key);
  }
}

function key(address: string, port: number): string {
  return `${address}|${port}`;
}

/** One socket to a destination; its listeners live as long as it does and serve each exchange in turn. */
class Connection {
  exchange: Exchange | null = null;
  /** Requests this connection has carried, the current one included. */
  uses = 0;

  constructor(
    readonly pool: UpstreamPool,
    readonly socket: net.Socket,
    readonly key: string,
  ) {
    socket.setTimeout(pool.opts.idleTimeoutMs);
    socket.on("data", (b: Buffer) => {
      if (this.exchange) this.exchange.onBytes(b);
      // Nothing was asked: an idle connection that talks cannot be trusted with the next request.
      else this.drop();
    });
    socket.on("end", () => (this.exchange ? this.exchange.onEof() : this.drop()));
    socket.on("error", (err: Error) => (this.exchange ? this.exchange.onSocketError(err) : this.drop()));
    socket.on("timeout", () =>
      this.exchange
        ? this.exchange.onSocketError(
            new DialError(`upstream idle for ${pool.opts.idleTimeoutMs} ms`, "timeout"),
          )
        : this.drop(),
    );
    socket.on("close", () => (this.exchange ? this.exchange.onEof() : this.pool.forget(this)));
    socket.on("drain", () => this.exchange?.handler.onDrain());
  }

  private drop(): void {
    this.pool.forget(this);
    this.socket.destroy();
  }
}

/** One request and its response on one connection. */
export class Exchange {
  private conn: Connection | null = null;
  private state = State.Idle;
  /** Bytes of a head, chunk-size line or trailer section not yet complete. */
  private pending: Buffer | null = null;
  /** Body bytes still expected (Length). */
  private remaining = 0;
  /** The body's decoder while it is chunked. */
  private chunks: ChunkedBody | null = null;
  private keepAlive = true;
  private noBody: boolean;
  private requestDone = false;
  private responseStarted = false;
  private finished = false;
  private paused = false;
  /** Response complete, request body still coming: the connection waits for `end` to be reused. */
  private parked = false;
  /** A 101 answered the upgrade request: the socket goes to the handler. */
  private upgraded = false;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly req: UpstreamRequest,
    private readonly head: string,
    private readonly chunked: boolean,
    readonly handler: UpstreamHandler,
  ) {
    this.noBody = req.method === "HEAD";
    this.requestDone = !req.hasBody;
  }

  /** @internal send the head on `conn` (kept-alive) or on a new connection. */
  start(conn: Connection | null): void {
    const c = conn ?? this.pool.dial(this.req.address, this.req.port);
    c.exchange = this;
    c.uses += 1;
    this.conn = c;
    this.state = State.Head;
    c.socket.write(this.head, "latin1");
  }

  /** A piece of the request body; false when the caller should wait for `onDrain`. */
  write(chunk: Buffer): boolean {
    if (this.finished || !this.conn) return true;
    const s = this.conn.socket;
    if (chunk.length === 0) return true;
    if (!this.chunked) return s.write(chunk);
    s.write(`${chunk.length.toString(16)}\r\n`, "latin1");
    s.write(chunk);
    return s.write(CRLF);
  }

  /** The request body is complete. */
  end(): void {
    if (this.requestDone) return;
    this.requestDone = true;
    const c = this.conn;
    if (!c || (this.finished && !this.parked)) return;
    if (this.chunked) c.socket.write(LAST_CHUNK, "latin1");
    if (this.parked) {
      this.parked = false;
      c.exchange = null;
      this.pool.release(c);
    }
  }

  /** Read the response body again after `onData` returned false. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.finished) this.conn?.socket.resume();
  }

  /** Give up: the connection is closed and no handler method is called again. */
  abort(): void {
    if (this.finished && !this.parked) return;
    this.finished = true;
    this.parked = false;
    const c = this.conn;
    if (c) {
      c.exchange = null;
      c.socket.destroy();
    }
  }

  // ---- the connection's events -----------------------------------------------------------

  /** @internal */
  onBytes(b: Buffer): void {
    if (this.finished) return this.unpark();
    this.responseStarted = true;
    try {
      this.parse(b);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** @internal the destination closed its side (or the socket closed). */
  onEof(): void {
    if (this.finished) return this.unpark();
    if (this.state === State.UntilClose) {
      this.state = State.Done;
      this.keepAlive = false;
      this.complete();
      return;
    }
    if (this.retry()) return;
    this.fail(
      new UpstreamProtocolError(
        this.state === State.Head ? "connection closed before a response" : "connection closed mid-body",
      ),
    );
  }

  /** @internal */
  onSocketError(err: Error): void {
    if (this.finished) return this.unpark();
    if (!(err instanceof DialError) && this.retry()) return;
    this.fail(err instanceof DialError ? err : asDialError(err, this.req.address, this.req.port));
  }

  /**
   * A kept-alive connection the destination closed just as it was reused: send the request
   * again on a new one, if nothing of a response came and no body was (or will be) sent.
   */
  private retry(): boolean {
    const c = this.conn;
    if (!c || c.uses <= 1 || this.responseStarted || this.req.hasBody) return false;
    c.exchange = null;
    c.socket.destroy();
    this.pending = null;
    this.start(null);
    return true;
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    const c = this.conn;
    if (c) {
      c.exchange = null;
      c.socket.destroy();
    }
    this.handler.onError(err);
  }

  /** Response done: hand over, then reuse or close the connection. */
  private complete(): void {
    if (this.finished) return;
    this.finished = true;
    const c = this.conn!;
    if (this.paused) {
      this.paused = false;
      c.socket.resume();
    }
    if (!this.keepAlive) {
      c.exchange = null;
      c.socket.destroy();
    } else if (this.requestDone) {
      c.exchange = null;
      this.pool.release(c);
    } else {
      // Reusable only once the request is fully sent too: `end` releases it.
      this.parked = true;
    }
    this.handler.onEnd();
  }

  /** A parked connection heard from the destination before the request ended: not reusable. */
  private unpark(): void {
    if (!this.parked) return;
    this.parked = false;
    const c = this.conn!;
    c.exchange = null;
    c.socket.destroy();
  }

  // ---- response parsing --------------------------------------------------------------------

  private parse(input: Buffer): void {
    let b = input;
    if (this.pending) {
      b = Buffer.concat([this.pending, b]);
      this.pending = null;
    }
    let i = 0;
    while (i < b.length && !this.finished) {
      switch (this.state) {
        case State.Head: {
          const end = b.indexOf(HEAD_END, i);
          if (end < 0) {
            if (b.length - i > this.pool.opts.maxHeaderBytes)
              throw new UpstreamProtocolError("response head too large");
            this.pending = b.subarray(i);
            return;
          }
          if (end - i + 4 > this.pool.opts.maxHeaderBytes)
            throw new UpstreamProtocolError("response head too large");
          this.onHead(b.toString("latin1", i, end));
          if (this.upgraded) return this.handOver(b.subarray(i, end + 4), b.subarray(end + 4));
          i = end + 4;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, b.length - i);
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.Done;
          this.body(i === 0 && n === b.length ? b : b.subarray(i, i + n));
          i += n;
          break;
        }
        case State.Chunked: {
          const chunks = this.chunks!;
          const next = chunks.step(b, i);
          if (next < 0) {
            this.pending = b.subarray(i);
            return;
          }
          i = next;
          if (chunks.data) this.body(chunks.data);
          if (chunks.done) this.state = State.Done;
          break;
        }
        case State.UntilClose: {
          this.body(i === 0 ? b : b.subarray(i));
          i = b.length;
          break;
        }
        case State.Done:
        case State.Idle:
          // Bytes after a complete response: nothing was asked for them.
          throw new UpstreamProtocolError("data after the end of the response");
      }
      if (this.state === State.Done && !this.finished) {
        if (i < b.length) throw new UpstreamProtocolError("data after the end of the response");
        this.complete();
        return;
      }
    }
  }

  private body(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (!this.handler.onData(chunk) && !this.paused && !this.finished) {
      this.paused = true;
      this.conn?.socket.pause();
    }
  }

  /** The destination switched protocols: its socket, as is, to the handler. */
  private handOver(head: Buffer, rest: Buffer): void {
    this.finished = true;
    const c = this.conn!;
    c.exchange = null;
    const { socket } = c;
    // Paused until the handler listens: a flowing socket with no listener would drop bytes.
    socket.pause();
    for (const event of ["data", "end", "error", "timeout", "close", "drain"])
      socket.removeAllListeners(event);
    socket.setTimeout(0);
    if (this.handler.onUpgrade) this.handler.onUpgrade(socket, head, rest);
    else socket.destroy();
  }

  /** A complete head (without its final CRLF CRLF): interim, or the final response. */
  private onHead(text: string): void {
    let eol = text.indexOf("\r\n");
    if (eol < 0) eol = text.length;
    const status = STATUS_LINE.exec(text.slice(0, eol));
    if (!status) throw new UpstreamProtocolError("malformed status line");
    const code = Number(status[2]);
    const http10 = status[1] === "0";
    const raw: string[] = [];
    let lengths: string[] | null = null;
    let te: string | null = null;
    let close = http10;
    while (eol < text.length) {
      const from = eol + 2;
      eol = text.indexOf("\r\n", from);
      if (eol < 0) eol = text.length;
      if (!pushField(text, from, eol, raw)) throw new UpstreamProtocolError("malformed header field");
      const name = raw[raw.length - 2]!;
      const value = raw[raw.length - 1]!;
      const n = name.length;
      if (n === 14 && name.toLowerCase() === "content-length") {
        // Framing fields allow no tab around their value, as in the front (see hasTab).
        if (hasTab(text, from, eol)) throw new UpstreamProtocolError("tab in Content-Length");
        (lengths ??= []).push(value);
      } else if (n === 17 && name.toLowerCase() === "transfer-encoding") {
        if (hasTab(text, from, eol)) throw new UpstreamProtocolError("tab in Transfer-Encoding");
        te = te === null ? value : `${te}, ${value}`;
      } else if (n === 10 && name.toLowerCase() === "connection") {
        for (const token of value.toLowerCase().split(",")) {
          const t = token.trim();
          if (t === "close") close = true;
          else if (t === "keep-alive" && http10) close = false;
        }
      }
    }
    if (code < 200) {
      if (code === 101) {
        if (!this.req.upgrade) throw new UpstreamProtocolError("101 Switching Protocols to a plain request");
        this.upgraded = true;
        return;
      }
      if (code === 100) this.handler.onContinue();
      // Interim: the final response follows on the same connection.
      this.state = State.Head;
      return;
    }
    if (lengths !== null && te !== null)
      throw new UpstreamProtocolError("both Content-Length and Transfer-Encoding");
    const length = lengths === null ? null : contentLength(lengths);
    if (typeof length === "string") throw new UpstreamProtocolError(length);
    // Repeats of one length ("5, 5", or two fields of 5) are read as that length (RFC 9110
    // §8.6), but passed on as one field: most clients, Node's among them, refuse them.
    if (length !== null && (lengths!.length > 1 || !DIGITS.test(lengths![0]!))) oneContentLength(raw, length);
    // A connection that asked to upgrade and was not is never reused.
    this.keepAlive = !close && !this.req.upgrade;
    if (this.noBody || code === 204 || code === 304) {
      this.state = State.Done;
    } else if (te !== null) {
      if (!endsInChunked(te))
        throw new UpstreamProtocolError("Transfer-Encoding that does not end in chunked");
      this.state = State.Chunked;
      this.chunks = new ChunkedBody(this.pool.opts.maxHeaderBytes, (m) => new UpstreamProtocolError(m));
    } else if (length !== null) {
      this.remaining = length;
      this.state = this.remaining === 0 ? State.Done : State.Length;
    } else {
      this.state = State.UntilClose;
      this.keepAlive = false;
    }
    this.handler.onResponse(code, status[3] ?? "", raw);
  }
}

/** Replace the Content-Length fields of a header list by one, where the first was, of `length`. */
function oneContentLength(raw: string[], length: number): void {
  let kept = false;
  let to = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 14 && name.toLowerCase() === "content-length") {
      if (kept) continue;
      kept = true;
      raw[to] = name;
      raw[to + 1] = String(length);
    } else {
      raw[to] = name;
      raw[to + 1] = raw[i + 1]!;
    }
    to += 2;
  }
  raw.length = to;
}
