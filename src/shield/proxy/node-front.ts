/**
 * The agents' HTTP/1.1 server on Node's own `http` module (`http_server: node` in shield.yaml),
 * under the same interface as the shield's own server (front.ts): for an operator who would
 * rather trust Node's parser (llhttp, in its strict mode whatever the process's flags) than the
 * shield's. llhttp takes the bytes apart; the rules of request-head.ts then judge what it read, as
 * they judge what front.ts reads, so both refuse the same request lines, Host and Expect headers
 * and body framings, and the proxy is handed the same requests.
 *
 * What holds with both servers: a body that could be delimited two ways (Content-Length with
 * Transfer-Encoding, two Content-Lengths, a Transfer-Encoding not ending in chunked) is refused
 * (llhttp refuses these itself; a coding before chunked the rules refuse), and nothing after a
 * refused request reaches the proxy; heads over `maxHeaderBytes` get 431, heads not complete
 * within `headerTimeoutMs` get 408, kept-alive and idle connections are closed.
 *
 * Where Node's server is laxer, or only different:
 * - Syntax llhttp reads and front.ts refuses: a run of spaces between the parts of the request
 *   line, a lone CR or LF before it, a tab before or after a Content-Length or Transfer-Encoding value, an
 *   empty name or value in a chunk extension. What it reads is what front.ts would have read
 *   without the stray bytes, and the proxy writes the request out anew, so a destination cannot
 *   read it another way.
 * - "RTSP/1.0" and "ICE/1.0" request lines are read as HTTP/1.0 (Node reports the version only).
 * - llhttp reads on after an HTTP/1.0 request whose Connection lists both keep-alive and close;
 *   here, as in front.ts, close wins (RFC 9112 §9.3) and nothing after that request is served.
 * - The head size counts the target and the field names and values, not the method, version,
 *   colons and line ends: a head a little over `maxHeaderBytes` can pass.
 * - Pipelined requests are read ahead and handed over while earlier responses are still being
 *   written (Node sends the responses in order); front.ts reads one request at a time. A tunnel
 *   or a refusal behind them waits here until they are written.
 * - A kept-alive connection is closed 1 s after `keepAliveTimeoutMs`, Node's margin over the
 *   timeout it advertises in `Keep-Alive`; responses also carry `Connection: keep-alive`.
 * - A body nobody took (its request refused before it was read) Node would read to its end and
 *   discard, to keep the connection; here, as in front.ts, the connection closes after the
 *   response instead.
 */
import http from "node:http";
import type net from "node:net";
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
import { BodyKind, checkRequestLine, HeadFields, type HeadFacts } from "./request-head.js";

/** The HTTP/1.1 server on `http.Server`: owns the listening socket and its connections. */
export class NodeFront implements Front {
  readonly server: http.Server;
  /** @internal set by `closeIdle`: responses from now on close their connection. */
  closing = false;
  private readonly conns = new Map<net.Socket, NodeConnection>();

  constructor(
    readonly opts: FrontOptions,
    /** @internal */ readonly handlers: FrontHandlers,
  ) {
    this.server = http.createServer({
      maxHeaderSize: opts.maxHeaderBytes,
      insecureHTTPParser: false,
      // Host is judged with the other rules, so that a missing one is refused and logged alike.
      requireHostHeader: false,
      headersTimeout: opts.headerTimeoutMs,
      // A body may take as long as it keeps moving; one that stalls meets the idle timeout.
      requestTimeout: 0,
      keepAliveTimeout: opts.keepAliveTimeoutMs,
      // As often as front.ts sweeps for heads past their time.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(opts.headerTimeoutMs / 4))),
      highWaterMark: opts.highWaterMark,
      noDelay: true,
    });
    // Node keeps 2000 fields by default and drops the rest unseen: a framing field among them
    // would frame the body without the rules knowing. The head size bounds them instead.
    this.server.maxHeadersCount = 0;
    this.server.timeout = opts.idleTimeoutMs;
    this.server.on("connection", (socket: net.Socket) => {
      const conn = new NodeConnection(this, socket);
      this.conns.set(socket, conn);
      socket.once("close", () => {
        this.conns.delete(socket);
        conn.closed();
      });
    });
    const onRequest = (im: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(im, res);
    this.server.on("request", onRequest);
    // Node would invite the body itself: the proxy decides first whether it wants one.
    this.server.on("checkContinue", onRequest);
    // Node would answer 417 itself, unlogged: the rules refuse it like any other head.
    this.server.on("checkExpectation", onRequest);
    this.server.on("connect", (im: http.IncomingMessage, s: net.Socket, head: Buffer) =>
      this.onTunnel(im, s, head, "connect"),
    );
    this.server.on("upgrade", (im: http.IncomingMessage, s: net.Socket, head: Buffer) =>
      this.onTunnel(im, s, head, "upgrade"),
    );
    this.server.on("clientError", (err: NodeJS.ErrnoException, s: net.Socket) => this.onClientError(err, s));
  }

  /** Close kept-alive connections waiting for a request; the others close after their response. */
  closeIdle(): void {
    this.closing = true;
    this.server.closeIdleConnections();
    // Node counts a connection that has not sent a byte as busy: it holds no request either.
    for (const [socket, conn] of this.conns) if (socket.bytesRead === 0 && conn.idle) socket.destroy();
  }

  private onRequest(im: http.IncomingMessage, res: http.ServerResponse): void {
    const conn = this.conns.get(im.socket as net.Socket);
    // After a request that was refused, or was the last, nothing more on its connection is served.
    if (!conn || conn.finished) return;
    const facts = this.judge(conn, im, "plain");
    if (!facts) return;
    const req = new NodeRequest(conn, im, res, facts);
    // Where this request's body ends is not to be trusted, or the client said it is the last:
    // nothing after it is served (Node may have read more already, and would serve it).
    if (!req.keepAlive) conn.stopReading();
    conn.started(req);
    this.handlers.request(req);
  }

  private onTunnel(im: http.IncomingMessage, socket: net.Socket, head: Buffer, kind: "connect" | "upgrade") {
    const conn = this.conns.get(socket);
    if (!conn || conn.finished) return;
    const facts = this.judge(conn, im, kind);
    if (!facts) return;
    if (facts.ambiguous) return conn.refuse(new RequestError(400, facts.ambiguous));
    // Node has let go of the socket: from now on only its idle timer in the tunnel counts.
    this.conns.delete(socket);
    socket.setTimeout(0);
    const req = new NodeRequest(conn, im, null, facts);
    conn.whenIdle(() => this.handlers.tunnel(req, socket, head, kind));
  }

  /** What the rules make of the head Node read, or null when they refuse it (and it is refused). */
  private judge(conn: NodeConnection, im: http.IncomingMessage, kind: HeadFacts["kind"]): HeadFacts | null {
    try {
      const facts = readHead(im);
      // Node and the rules disagree about what follows the head: neither reading is safe.
      if (facts.kind !== kind)
        throw new RequestError(400, `request read as ${kind}, framed as ${facts.kind}`);
      return facts;
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      conn.refuse(err);
      return null;
    }
  }

  private onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    const conn = this.conns.get(socket);
    const refusal = requestErrorOf(err, this.opts);
    if (!conn || !refusal) socket.destroy();
    else conn.refuse(refusal);
  }
}

/** A head as Node read it, judged by the shield's rules; throws a RequestError when they refuse it. */
function readHead(im: http.IncomingMessage): HeadFacts {
  const method = im.method ?? "";
  const http11 = checkRequestLine(method, im.url ?? "", `HTTP/${im.httpVersion}`);
  const fields = new HeadFields(http11);
  const raw = im.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) fields.add(raw[i]!, raw[i + 1]!);
  return fields.finish(method);
}

/** Node's error for bytes it could not read as a request, as a refusal; null when not a request's fault. */
function requestErrorOf(err: NodeJS.ErrnoException, opts: FrontOptions): RequestError | null {
  const code = err.code ?? "";
  if (code === "HPE_HEADER_OVERFLOW") return new RequestError(431, "request head too large");
  if (code === "ERR_HTTP_REQUEST_TIMEOUT")
    return new RequestError(408, `request head not complete within ${opts.headerTimeoutMs} ms`);
  // The client stopped sending mid-request: there is nobody to answer.
  if (code === "HPE_INVALID_EOF_STATE" || !code.startsWith("HPE_")) return null;
  const reason = (err as { reason?: unknown }).reason;
  return new RequestError(400, typeof reason === "string" ? reason.toLowerCase() : err.message);
}

/**
 * One agent connection while Node serves it: the requests handed to the proxy and not yet
 * answered, in order, and whether one was refused or was the last (nothing more is served).
 */
class NodeConnection {
  finished = false;
  private readonly inFlight: NodeRequest[] = [];
  /** The last plain request handed over: the one whose body Node may be reading. */
  private last: NodeRequest | null = null;
  /** A refusal, or a tunnel's hand-over, waiting for the responses before it to be written. */
  private next: (() => void) | null = null;

  constructor(
    readonly front: NodeFront,
    readonly socket: net.Socket,
  ) {
    // Node stops listening for errors when it hands a socket over as a tunnel.
    socket.on("error", () => socket.destroy());
  }

  get idle(): boolean {
    return this.inFlight.length === 0 && this.next === null;
  }

  started(req: NodeRequest): void {
    this.inFlight.push(req);
    this.last = req;
  }

  stopReading(): void {
    this.finished = true;
    this.socket.pause();
  }

  /**
   * Bytes Node could not read: the body of the request being read, which fails, or a request
   * of their own, whose refusal follows the responses owed before it. After the connection's
   * last request, what Node makes of the bytes after it does not matter.
   */
  refuse(err: RequestError): void {
    const reading = this.last;
    if (reading && !reading.bodyRead) {
      this.stopReading();
      return reading.fail(err);
    }
    if (this.finished) return;
    this.stopReading();
    this.whenIdle(() => this.front.handlers.clientError(err, this.socket));
  }

  whenIdle(then: () => void): void {
    if (this.inFlight.length === 0) then();
    else this.next = then;
  }

  responseDone(req: NodeRequest): void {
    const i = this.inFlight.indexOf(req);
    if (i >= 0) this.inFlight.splice(i, 1);
    if (this.inFlight.length > 0) return;
    const next = this.next;
    this.next = null;
    if (next) next();
    else if (this.front.closing && !this.socket.destroyed) this.socket.destroySoon();
  }

  closed(): void {
    this.next = null;
    for (const req of this.inFlight.splice(0)) req.connectionClosed();
  }
}

/** A request as Node read it, and its response written through Node's `ServerResponse`. */
class NodeRequest implements FrontRequest {
  failure: string | null = null;
  headersSent = false;
  complete = false;
  keepAlive: boolean;
  readonly kind: HeadFacts["kind"];
  readonly ambiguous: string | null;
  readonly hasBody: boolean;
  private watcher: ResponseWatcher | null = null;
  private bodyTaken = false;
  /** Why Node could not read the body, found before the owner took it. */
  private bodyFault: RequestError | null = null;
  private closeNotified = false;

  constructor(
    private readonly conn: NodeConnection,
    private readonly im: http.IncomingMessage,
    /** Null for a tunnel: its answer is written on the socket. */
    private readonly res: http.ServerResponse | null,
    facts: HeadFacts,
  ) {
    this.kind = facts.kind;
    this.ambiguous = facts.ambiguous;
    this.hasBody = facts.bodyKind !== BodyKind.None;
    this.keepAlive = facts.keepAlive && facts.ambiguous === null;
    if (res) {
      // The destination's Date, if it sent one, is the only one the agent gets.
      res.sendDate = false;
      res.on("drain", () => this.watcher?.onWritable());
    }
  }

  get method(): string {
    return this.im.method ?? "";
  }

  get url(): string {
    return this.im.url ?? "";
  }

  get rawHeaders(): string[] {
    return this.im.rawHeaders;
  }

  get socket(): net.Socket {
    return this.conn.socket;
  }

  get destroyed(): boolean {
    return this.conn.socket.destroyed;
  }

  /** @internal Node has read the whole body (or there is none). */
  get bodyRead(): boolean {
    return this.im.complete;
  }

  watch(watcher: ResponseWatcher): void {
    this.watcher = watcher;
  }

  takeBody(onData: (chunk: Buffer) => boolean, onEnd: () => void): void {
    if (this.bodyTaken) return;
    this.bodyTaken = true;
    if (this.bodyFault) return this.fail(this.bodyFault);
    if (!this.hasBody || this.ambiguous) return onEnd();
    const { im } = this;
    im.on("data", (chunk: Buffer) => {
      if (!onData(chunk)) im.pause();
    });
    im.once("end", onEnd);
  }

  resumeBody(): void {
    if (this.bodyTaken) this.im.resume();
  }

  writeContinue(): void {
    if (this.im.httpVersion === "1.1" && !this.headersSent && !this.destroyed) this.res?.writeContinue();
  }

  writeHead(status: number, reason: string, headers: readonly string[]): void {
    const { res } = this;
    if (this.headersSent || !res) return;
    this.headersSent = true;
    // A body the client sent and nobody read leaves the connection unusable.
    if (this.hasBody && !this.bodyTaken) this.keepAlive = false;
    if (this.conn.front.closing) this.keepAlive = false;
    if (!this.keepAlive) res.shouldKeepAlive = false;
    try {
      res.writeHead(status, reason, headers as string[]);
    } catch (err) {
      // Node refuses a reason or field it would not write: the response cannot be sent.
      this.failure = `response head not writable: ${err instanceof Error ? err.message : String(err)}`;
      this.destroy();
    }
  }

  write(chunk: Buffer): boolean {
    if (this.complete || this.destroyed || !this.res) return true;
    return this.res.write(chunk);
  }

  end(): void {
    if (this.complete) return;
    this.complete = true;
    if (!this.destroyed) this.res?.end();
    this.conn.responseDone(this);
    this.notifyClose();
  }

  reply(status: number, text: string, extra: readonly string[] = []): void {
    if (this.headersSent || this.destroyed) return;
    const { headers, body } = plainReply(text, extra);
    this.writeHead(status, text, headers);
    this.write(body);
    this.end();
  }

  destroy(): void {
    this.conn.socket.destroy();
  }

  /** @internal Node could not read the body to its end: answer 400 if still possible, else cut. */
  fail(err: RequestError): void {
    // Node reads a body before anyone asks for it; front.ts finds a fault only once the owner
    // takes the body, and so does the owner here, after it is watching.
    if (!this.bodyTaken) {
      this.bodyFault = err;
      return;
    }
    this.failure = err.message;
    this.keepAlive = false;
    // The response went out whole already: close once it is written.
    if (this.complete) this.socket.destroySoon();
    else if (this.headersSent) this.destroy();
    // Without keep-alive Node closes the connection once this answer is written.
    else this.reply(err.status, STATUS_TEXT[err.status]);
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
