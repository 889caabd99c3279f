/**
 * The shield's HTTP/1.1 server for agents: request heads read strictly, bodies decoded,
 * responses framed, connections kept alive, and CONNECT or Upgrade requests handed over as raw
 * sockets. It replaces `http.Server`, whose request and response objects, streams, listeners and
 * timers per request cost the shield more CPU and garbage than its own work on a request
 * (`http_server: node` brings it back, as node-front.ts; the rules on what a head says,
 * request-head.ts, are the same for both).
 *
 * Strictness (RFC 9112): a request line of exactly method SP target SP HTTP/1.0 or 1.1; header
 * fields without obsolete line folding, whitespace before the colon or control characters; CRLF
 * line ends only; exactly one Host in HTTP/1.1; chunked bodies with CRLF after each chunk. A
 * request whose body could be delimited two ways (Content-Length with Transfer-Encoding,
 * disagreeing Content-Length values, a Transfer-Encoding not ending in chunked) is handed to the
 * owner marked `ambiguous`, and nothing after its head is ever read. One request is served at a
 * time per connection: bytes pipelined behind it wait, and reading stops while they exceed the
 * head limit.
 *
 * Time limits: a head must be complete `headerTimeoutMs` after its first byte (or after the
 * connection opened), a kept-alive connection may wait `keepAliveTimeoutMs` for its next
 * request, and no byte either way for `idleTimeoutMs` closes the connection.
 */
import net from "node:net";
import {
  plainReply,
  RequestError,
  STATUS_TEXT,
  type Front,
  type FrontHandlers,
  type FrontOptions,
  type FrontRequest,
  type ResponseWatcher,
} from "./front-api.js";
import { ChunkedBody, hasTab, pushField } from "./http1.js";
import { BodyKind, checkRequestLine, Framing, HeadFields } from "./request-head.js";

const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");
/** Bodies at most this large go out with their head in one write. */
const JOINED_WRITE_BYTES = 16 * 1024;

const enum Phase {
  /** Reading a request head (or waiting for one). */
  Head,
  /** Reading the current request's body. */
  Body,
  /** The request is read; its response is not done. Later bytes wait in `pending`. */
  Wait,
  /** Closed, closing, or handed over as a tunnel. */
  Gone,
}

/** The HTTP/1.1 server: owns the listening socket and every connection not handed over. */
export class FrontServer implements Front {
  readonly server: net.Server;
  /** @internal connections being served (not tunnels). */
  readonly conns = new Set<AgentConnection>();
  /** @internal set by `closeIdle`: responses from now on close their connection. */
  closing = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly opts: FrontOptions,
    readonly handlers: FrontHandlers,
  ) {
    this.server = net.createServer({
      // A tunnel's half-close is passed on, not answered by closing both ways.
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: opts.highWaterMark,
    });
    this.server.on("connection", (s: net.Socket) => this.conns.add(new AgentConnection(this, s)));
    // How often heads and kept-alive connections are checked against their limits.
    const every = Math.max(100, Math.min(1000, Math.floor(opts.headerTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), every).unref();
    this.server.once("close", () => clearInterval(this.sweeper));
  }

  /** Close kept-alive connections waiting for a request; the others close after their response. */
  closeIdle(): void {
    this.closing = true;
    for (const c of this.conns) c.closeIfIdle();
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.conns) c.check(now);
  }
}

/** One agent connection while it speaks HTTP. */
export class AgentConnection {
  private phase = Phase.Head;
  /** Bytes received and not yet consumed: a partial head, a paused body, pipelined requests. */
  private pending: Buffer | null = null;
  /** When the current head started arriving (0: no byte of it yet). */
  private headSince: number;
  /** When the connection last finished a response (for the keep-alive limit). */
  private idleSince = 0;
  private current: AgentRequest | null = null;
  private body = BodyKind.None;
  /** Body bytes left (Length). */
  private remaining = 0;
  private chunks: ChunkedBody | null = null;
  /** Reading is stopped until the body's consumer asks for more. */
  private bodyPaused = false;
  /** A feed of pipelined bytes is scheduled. */
  private scheduled = false;
  private readonly onData = (b: Buffer) => this.received(b);
  private readonly onEnd = () => this.ended();
  private readonly onDrain = () => this.current?.drained();
  private readonly onTimeout = () => this.socket.destroy();

  constructor(
    private readonly front: FrontServer,
    readonly socket: net.Socket,
  ) {
    this.headSince = Date.now();
    socket.setTimeout(front.opts.idleTimeoutMs, this.onTimeout);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("drain", this.onDrain);
    socket.on("error", () => socket.destroy());
    socket.once("close", () => this.closed());
  }

  get closing(): boolean {
    return this.front.closing;
  }

  /** The sweeper's look at this connection's time limits. */
  check(now: number): void {
    if (this.phase !== Phase.Head) return;
    if (this.headSince > 0) {
      if (now - this.headSince > this.front.opts.headerTimeoutMs)
        this.fail(
          new RequestError(408, `request head not complete within ${this.front.opts.headerTimeoutMs} ms`),
        );
    } else if (now - this.idleSince > this.front.opts.keepAliveTimeoutMs) {
      this.socket.destroy();
    }
  }

  /** No request in flight and no byte of the next one: nothing is lost by closing now. */
  closeIfIdle(): void {
    if (this.phase === Phase.Head && !this.pending && !this.scheduled) this.socket.destroy();
  }

  // ---- reading -----------------------------------------------------------------------------

  private received(b: Buffer): void {
    if (this.phase === Phase.Wait || this.phase === Phase.Gone || this.scheduled) {
      // Not read until the current response is done; a client that keeps sending waits.
      if (this.phase === Phase.Gone) return;
      this.pending = this.pending ? Buffer.concat([this.pending, b]) : b;
      if (this.pending.length > this.front.opts.maxHeaderBytes) this.socket.pause();
      return;
    }
    if (this.pending) {
      b = Buffer.concat([this.pending, b]);
      this.pending = null;
    }
    this.feed(b);
  }

  /** Consume `b` as far as the current phase allows; the rest waits in `pending`. */
  private feed(b: Buffer): void {
    let i = 0;
    try {
      while (i < b.length) {
        if (this.phase === Phase.Head) {
          const next = this.readHead(b, i);
          if (next < 0) return;
          i = next;
        } else if (this.phase === Phase.Body) {
          const next = this.readBody(b, i);
          if (next < 0) return;
          i = next;
        } else {
          if (this.phase === Phase.Wait) this.hold(b.subarray(i));
          return;
        }
      }
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      this.fail(err);
    }
  }

  private hold(rest: Buffer): void {
    this.pending = rest.length > 0 ? rest : null;
    if (rest.length > this.front.opts.maxHeaderBytes) this.socket.pause();
  }

  /**
   * A head from b[i]: returns where its body starts, or -1 if the head is not complete (or the
   * socket is no longer ours).
   */
  private readHead(b: Buffer, i: number): number {
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (i + 1 < b.length && b[i] === 13 && b[i + 1] === 10) i += 2;
    if (this.headSince === 0) this.headSince = Date.now();
    const max = this.front.opts.maxHeaderBytes;
    const end = b.indexOf(HEAD_END, i);
    if (end < 0) {
      if (b.length - i > max) throw new RequestError(431, "request head too large");
      this.pending = i === 0 ? b : b.subarray(i);
      return -1;
    }
    if (end + 4 - i > max) throw new RequestError(431, "request head too large");
    const req = parseHead(this, b.toString("latin1", i, end));
    i = end + 4;
    this.headSince = 0;
    if (req.kind !== "plain") {
      // A tunnel's bytes follow its head; a body framed in a way a parser could doubt is refused.
      if (req.ambiguous) throw new RequestError(400, req.ambiguous);
      this.handOver(req, b.subarray(i));
      return -1;
    }
    this.current = req;
    this.body = req.ambiguous ? BodyKind.None : req.bodyKind;
    this.remaining = req.bodyLength;
    this.chunks =
      this.body === BodyKind.Chunked
        ? new ChunkedBody(this.front.opts.maxHeaderBytes, (m) => new RequestError(400, m))
        : null;
    if (req.ambiguous || this.body === BodyKind.None) {
      this.phase = Phase.Wait;
    } else {
      this.phase = Phase.Body;
      // Until the owner takes the body, it stays unread.
      this.bodyPaused = true;
    }
    if (req.ambiguous) {
      // Where this request ends is unknown: nothing after its head is read, ever.
      this.socket.pause();
      this.socket.off("data", this.onData);
      this.front.handlers.request(req);
      return -1;
    }
    this.front.handlers.request(req);
    // The owner may have answered, or closed the connection, already.
    const phase = this.phase as Phase;
    if (phase === Phase.Gone) return -1;
    if (phase === Phase.Body && this.bodyPaused) {
      this.pending = i < b.length ? b.subarray(i) : null;
      this.socket.pause();
      return -1;
    }
    return i;
  }

  /** Body bytes from b[i] to the owner: returns the index after them, or -1 to wait. */
  private readBody(b: Buffer, i: number): number {
    const req = this.current!;
    if (this.bodyPaused) {
      this.pending = b.subarray(i);
      this.socket.pause();
      return -1;
    }
    let data: Buffer | null;
    if (this.body === BodyKind.Length) {
      const n = Math.min(this.remaining, b.length - i);
      this.remaining -= n;
      data = i === 0 && n === b.length ? b : b.subarray(i, i + n);
      i += n;
    } else {
      const chunks = this.chunks!;
      const next = chunks.step(b, i);
      if (next < 0) {
        this.pending = b.subarray(i);
        return -1;
      }
      i = next;
      data = chunks.data;
    }
    const done = this.body === BodyKind.Length ? this.remaining === 0 : this.chunks!.done;
    if (data && data.length > 0 && !req.bodyData(data)) this.bodyPaused = true;
    if (done) {
      this.bodyPaused = false;
      this.body = BodyKind.None;
      this.chunks = null;
      req.bodyEnd();
      if (this.phase !== Phase.Body) return this.phase === Phase.Gone ? -1 : i;
      if (req.complete) this.next();
      else this.phase = Phase.Wait;
    }
    return i;
  }

  /** @internal the owner takes the body (or asks for more of it). */
  resumeBody(): void {
    if (this.phase !== Phase.Body || !this.bodyPaused) return;
    this.bodyPaused = false;
    this.socket.resume();
    const p = this.pending;
    if (p) {
      this.pending = null;
      this.feed(p);
    }
  }

  private handOver(req: AgentRequest, head: Buffer): void {
    this.phase = Phase.Gone;
    this.pending = null;
    const s = this.socket;
    s.pause();
    s.off("data", this.onData);
    s.off("end", this.onEnd);
    s.off("drain", this.onDrain);
    s.off("timeout", this.onTimeout);
    s.setTimeout(0);
    this.front.conns.delete(this);
    this.front.handlers.tunnel(req, s, head, req.kind === "connect" ? "connect" : "upgrade");
  }

  /**
   * A request that could not be read. Mid-request (a malformed body), the request's own record
   * says why and the client gets a 400 if nothing of the response was sent; else the owner
   * answers and logs it.
   */
  private fail(err: RequestError): void {
    const req = this.current;
    this.phase = Phase.Gone;
    this.pending = null;
    this.socket.off("data", this.onData);
    if (!req) {
      this.front.handlers.clientError(err, this.socket);
      return;
    }
    req.failure = err.message;
    req.keepAlive = false;
    if (req.headersSent) {
      this.socket.destroy();
      return;
    }
    req.reply(err.status, STATUS_TEXT[err.status]);
    this.socket.destroySoon();
  }

  /** The client finished sending: whatever is in flight is cut, as nothing more can be asked. */
  private ended(): void {
    if (this.phase === Phase.Head && !this.pending) this.socket.end();
    else this.socket.destroy();
  }

  private closed(): void {
    this.phase = Phase.Gone;
    this.pending = null;
    this.front.conns.delete(this);
    const req = this.current;
    this.current = null;
    req?.connectionClosed();
  }

  // ---- writing -----------------------------------------------------------------------------

  /** @internal the current response is complete: close, or serve the next request. */
  responseDone(req: AgentRequest): void {
    if (this.current !== req || this.phase === Phase.Gone) return;
    if (!req.keepAlive) {
      this.phase = Phase.Gone;
      this.socket.destroySoon();
      return;
    }
    // A body still being sent waits for its end (readBody calls next); one never taken cannot.
    if (this.phase === Phase.Body) return;
    this.next();
  }

  private next(): void {
    this.current = null;
    this.phase = Phase.Head;
    this.headSince = 0;
    this.idleSince = Date.now();
    if (this.front.closing && !this.pending) {
      this.phase = Phase.Gone;
      this.socket.destroySoon();
      return;
    }
    this.socket.resume();
    if (this.pending && !this.scheduled) {
      // Pipelined bytes: read them in a turn of their own, not inside the last response's stack.
      this.scheduled = true;
      process.nextTick(() => {
        this.scheduled = false;
        const p = this.pending;
        this.pending = null;
        if (p && this.phase === Phase.Head) this.feed(p);
      });
    }
  }
}

/** A request as this server read it, and its response written straight to the socket. */
export class AgentRequest implements FrontRequest {
  /** Why the request body could not be read to its end (the log's reason), or null. */
  failure: string | null = null;
  headersSent = false;
  /** `end` was called: the whole response went to the socket. */
  complete = false;
  /** The connection may serve another request after this one. */
  keepAlive: boolean;
  /** Bytes of the response head not yet written (sent with the first body bytes). */
  private head: string | null = null;
  private chunked = false;
  private noBody = false;
  private watcher: ResponseWatcher | null = null;
  private bodyTaken = false;
  private onBody: ((chunk: Buffer) => boolean) | null = null;
  private onBodyEnd: (() => void) | null = null;
  private bodyDone: boolean;
  private closeNotified = false;

  constructor(
    private readonly conn: AgentConnection,
    readonly method: string,
    readonly url: string,
    readonly http11: boolean,
    /** Header list as received: name, value, name, value, ... */
    readonly rawHeaders: string[],
    readonly kind: "plain" | "connect" | "upgrade",
    /** Why the body's end cannot be known, or null. */
    readonly ambiguous: string | null,
    /** @internal */ readonly bodyKind: BodyKind,
    /** @internal */ readonly bodyLength: number,
    keepAlive: boolean,
  ) {
    this.keepAlive = keepAlive && ambiguous === null;
    this.bodyDone = bodyKind === BodyKind.None || ambiguous !== null;
  }

  get socket(): net.Socket {
    return this.conn.socket;
  }

  /** Whether a body follows the head. */
  get hasBody(): boolean {
    return this.bodyKind !== BodyKind.None;
  }

  get destroyed(): boolean {
    return this.conn.socket.destroyed;
  }

  /** Be told of drains and of the response's end. */
  watch(watcher: ResponseWatcher): void {
    this.watcher = watcher;
  }

  /** Read the body: pieces to `onData` (false: stop until `resumeBody`), then `onEnd`. */
  takeBody(onData: (chunk: Buffer) => boolean, onEnd: () => void): void {
    if (this.bodyTaken) return;
    this.bodyTaken = true;
    this.onBody = onData;
    this.onBodyEnd = onEnd;
    if (this.bodyDone) onEnd();
    else this.conn.resumeBody();
  }

  resumeBody(): void {
    if (this.bodyTaken && !this.bodyDone) this.conn.resumeBody();
  }

  /** @internal */
  bodyData(chunk: Buffer): boolean {
    return this.onBody ? this.onBody(chunk) : true;
  }

  /** @internal */
  bodyEnd(): void {
    this.bodyDone = true;
    this.onBodyEnd?.();
  }

  /** Relay a 100 Continue; never to an HTTP/1.0 client, which cannot read one (RFC 9110 §15.2). */
  writeContinue(): void {
    if (this.http11 && !this.headersSent && !this.destroyed)
      this.conn.socket.write("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
  }

  /**
   * The response head. Its framing follows the headers: their Content-Length if given, none
   * where the status or method has no body, else chunked (HTTP/1.1) or until close (HTTP/1.0).
   */
  writeHead(status: number, reason: string, headers: readonly string[]): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.noBody = this.method === "HEAD" || status === 204 || status === 304 || status < 200;
    let head = `HTTP/1.1 ${status} ${reason}\r\n`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    // A body the client sent and nobody read leaves the connection unusable.
    if (!this.bodyDone && !this.bodyTaken) this.keepAlive = false;
    if (this.conn.closing) this.keepAlive = false;
    if (!this.noBody && !hasLength) {
      if (this.http11) this.chunked = true;
      else this.keepAlive = false;
    }
    if (!this.keepAlive) head += "Connection: close\r\n";
    else if (!this.http11) head += "Connection: keep-alive\r\n";
    if (this.chunked) head += "Transfer-Encoding: chunked\r\n";
    this.head = head + "\r\n";
  }

  /** A piece of the response body; false when the socket is full (`onWritable` follows). */
  write(chunk: Buffer): boolean {
    const s = this.conn.socket;
    if (this.complete || s.destroyed) return true;
    if (this.noBody || chunk.length === 0) return true;
    const size = this.chunked ? `${chunk.length.toString(16)}\r\n` : "";
    const head = this.head;
    this.head = null;
    if (head !== null && chunk.length <= JOINED_WRITE_BYTES) {
      // Head and body in one write, one syscall: the common small response.
      const lead = head.length + size.length;
      const out = Buffer.allocUnsafe(lead + chunk.length + (this.chunked ? 2 : 0));
      out.write(head, 0, "latin1");
      if (size) out.write(size, head.length, "latin1");
      chunk.copy(out, lead);
      if (this.chunked) CRLF.copy(out, lead + chunk.length);
      return s.write(out);
    }
    s.cork();
    if (head !== null) s.write(head, "latin1");
    if (this.chunked) s.write(size, "latin1");
    let ok = s.write(chunk);
    if (this.chunked) ok = s.write(CRLF);
    s.uncork();
    return ok;
  }

  /** The response is complete. */
  end(): void {
    if (this.complete) return;
    this.complete = true;
    const s = this.conn.socket;
    if (!s.destroyed) {
      let tail = this.head ?? "";
      this.head = null;
      if (this.chunked) tail += "0\r\n\r\n";
      if (tail) s.write(tail, "latin1");
    }
    this.conn.responseDone(this);
    this.notifyClose();
  }

  /** A whole plain-text response: `extra` is a header list (name, value, ...). */
  reply(status: number, text: string, extra: readonly string[] = []): void {
    if (this.headersSent || this.destroyed) return;
    const { headers, body } = plainReply(text, extra);
    this.writeHead(status, text, headers);
    this.write(body);
    this.end();
  }

  /** Cut the connection. */
  destroy(): void {
    this.conn.socket.destroy();
  }

  /** @internal */
  drained(): void {
    this.watcher?.onWritable();
  }

  /** @internal */
  connectionClosed(): void {
    this.notifyClose();
  }

  private notifyClose(): void {
    if (this.closeNotified) return;
    this.closeNotified = true;
    this.watcher?.onClose();
  }
}

/** A request head (without its final CRLF CRLF) as a request, or a RequestError. */
function parseHead(conn: AgentConnection, text: string): AgentRequest {
  let eol = text.indexOf("\r\n");
  if (eol < 0) eol = text.length;
  const sp1 = text.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : text.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 > eol || eol - sp2 !== 9)
    throw new RequestError(400, "malformed request line");
  const method = text.slice(0, sp1);
  const url = text.slice(sp1 + 1, sp2);
  const http11 = checkRequestLine(method, url, text.slice(sp2 + 1, eol));
  const raw: string[] = [];
  const fields = new HeadFields(http11);
  while (eol < text.length) {
    const from = eol + 2;
    eol = text.indexOf("\r\n", from);
    if (eol < 0) eol = text.length;
    if (!pushField(text, from, eol, raw)) throw new RequestError(400, "malformed header field");
    const framing = fields.add(raw[raw.length - 2]!, raw[raw.length - 1]!);
    // Framing fields allow no tab around their value: one parser's whitespace is another's byte.
    if (framing !== Framing.None && hasTab(text, from, eol))
      throw new RequestError(
        400,
        framing === Framing.ContentLength ? "tab in Content-Length" : "tab in Transfer-Encoding",
      );
  }
  const f = fields.finish(method);
  return new AgentRequest(
    conn,
    method,
    url,
    http11,
    raw,
    f.kind,
    f.ambiguous,
    f.bodyKind,
    f.bodyLength,
    f.keepAlive,
  );
}
