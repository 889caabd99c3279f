import type net from "node:net";
import type { AddressInfo } from "node:net";
import { parseTarget } from "../policy/normalize.js";
import { combined, outcomeOf, type Outcome } from "../policy/outcome.js";
import { dial, DialError, SOCKET_HIGH_WATER_MARK } from "../net/dial.js";
import {
  checkAnswers,
  resolveChecked,
  systemResolver,
  type CheckedAddress,
  type Resolver,
} from "../net/resolve.js";
import type { Agent, BudgetLimit, Decision, LogSink, Target } from "../types.js";
import { BudgetMeter, CUT_PREFIX, overrunReason, overrunRule, type Overrun } from "./budget.js";
import { downstreamResponseHeaders, parseProxyBasic, upstreamRequestHeaders } from "./headers.js";
import { FrontServer } from "./front.js";
import {
  STATUS_TEXT,
  type Front,
  type FrontRequest,
  type RequestError,
  type ResponseWatcher,
} from "./front-api.js";
import { NodeFront } from "./node-front.js";
import { BulkBuffers } from "./bulk-buffers.js";
import { ConnectionTracker } from "./tracker.js";
import { UpstreamPool, type Exchange, type UpstreamHandler } from "./upstream.js";

/** What the data path needs from the policy; `Policy` from ../policy satisfies it. */
export interface ProxyPolicy {
  identify(sourceAddress: string, basic?: { user: string; pass: string }): Agent | null;
  decide(agent: Agent, target: Target): Decision;
  checkAddress(agent: Agent, target: Target, address: string): Decision;
  /** What the agent may send per window; read again for every chunk it sends. */
  budgets(agent: Agent): readonly BudgetLimit[];
}

export interface ProxyLimits {
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  maxTunnelsPerAgent: number;
}

export interface ProxyOptions {
  sink: LogSink;
  limits: ProxyLimits;
  refusal: "403" | "reset";
  /** Extra request headers never forwarded upstream (on top of the built-in masking list). */
  stripHeaders?: readonly string[];
  resolver?: Resolver;
  /** Tunnels reading 1 MiB at a time, at most; the rest read 64 KiB at a time. Default 64. */
  maxBulkBuffers?: number;
  /** Of those, tunnels reading 8 MiB at a time, at most. Default 8. */
  maxLargeBuffers?: number;
  /** What reads agents' requests: the shield's own HTTP/1.1 server (default) or Node's. */
  httpServer?: "clawguard" | "node";
}

const AUTH_REQUIRED_OUTCOME: Outcome = {
  decision: "denied",
  rule: null,
  reason: "refused: no known agent for these credentials and source address",
};

/**
 * The shield's data path: HTTP forwarding (absolute-form), WebSocket upgrades and CONNECT
 * tunnels. For each request it identifies the caller, asks the policy, resolves once, checks
 * every answer, dials the checked address and pipes bytes; every request or tunnel ends in
 * exactly one log record. Until a policy is set every connection is reset (fail closed).
 */
export class ShieldProxy {
  readonly server: net.Server;
  /** Open tunnels and in-flight HTTP exchanges, for the tunnel limit and for lockdown. */
  readonly tunnels = new ConnectionTracker();
  private readonly front: Front;
  private policy: ProxyPolicy | null = null;
  private readonly masked: ReadonlySet<string>;
  private readonly resolver: Resolver;
  private readonly upstream: UpstreamPool;
  /** 1 MiB read buffers for tunnels streaming in bulk, lent and returned. */
  readonly bulkBuffers: BulkBuffers;
  /** 8 MiB read buffers for the tunnels whose 1 MiB reads come back full. */
  readonly largeBuffers: BulkBuffers;
  /** What each agent sent and opened in its budgets' windows. */
  readonly budgets = new BudgetMeter();
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly opts: ProxyOptions) {
    this.masked = new Set((opts.stripHeaders ?? []).map((h) => h.toLowerCase()));
    this.resolver = opts.resolver ?? systemResolver;
    this.bulkBuffers = new BulkBuffers(BULK_READ_BYTES, opts.maxBulkBuffers ?? MAX_BULK_BUFFERS);
    // One kept idle: 8 MiB held after every transfer would show in the resident size.
    this.largeBuffers = new BulkBuffers(LARGE_READ_BYTES, opts.maxLargeBuffers ?? MAX_LARGE_BUFFERS, 1);
    const { limits } = opts;
    this.upstream = new UpstreamPool({
      connectTimeoutMs: limits.connectTimeoutMs,
      idleTimeoutMs: limits.idleTimeoutMs,
      // Never refuse a response head smaller than what agents may send, nor one under 16 KiB.
      maxHeaderBytes: Math.max(16 * 1024, limits.maxHeaderBytes),
    });
    const Server = opts.httpServer === "node" ? NodeFront : FrontServer;
    this.front = new Server(
      {
        maxHeaderBytes: limits.maxHeaderBytes,
        headerTimeoutMs: limits.headerTimeoutMs,
        keepAliveTimeoutMs: Math.min(5000, limits.idleTimeoutMs),
        idleTimeoutMs: limits.idleTimeoutMs,
        // Client sockets carry tunnels too: the same room as the upstream side (see dial.ts).
        highWaterMark: SOCKET_HIGH_WATER_MARK,
      },
      {
        request: (req) => this.onRequest(req),
        tunnel: (req, socket, head, kind) => this.onTunnel(req, socket, head, kind),
        clientError: (err, socket) => this.onClientError(err, socket),
      },
    );
    this.server = this.front.server;
    this.server.on("connection", (s: net.Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
      if (!this.policy) s.resetAndDestroy();
    });
  }

  /** Install (or swap) the policy; requests already past `decide` keep the answer they got. */
  setPolicy(policy: ProxyPolicy): void {
    this.policy = policy;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host, port }, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stop accepting, end idle keep-alive connections, and cut open tunnels after `graceMs`. */
  async close(graceMs = 2000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.front.closeIdle();
    const timer = setTimeout(() => {
      this.tunnels.closeWhere(() => true);
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    this.upstream.close();
  }

  // ---- plain HTTP -------------------------------------------------------------------------

  private onRequest(req: FrontRequest): void {
    const started = Date.now();
    const log = this.logger(req, started);
    const policy = this.policy;
    if (!policy) {
      req.socket.resetAndDestroy();
      return;
    }
    const agent = policy.identify(log.sourceAddress, parseProxyBasic(req.rawHeaders));
    log.agent(agent);
    if (req.ambiguous) {
      // The rest of this connection cannot be trusted to be split the way the client meant:
      // the front reads nothing more of it and closes it after this answer.
      req.reply(400, "Bad Request");
      log.end({ decision: "denied", rule: null, reason: `refused: ${req.ambiguous}` });
      return;
    }
    const form = splitAbsoluteForm(req.url);
    if (!form) {
      req.reply(400, "Bad Request");
      log.end({
        decision: "denied",
        rule: null,
        reason: "refused: request target is not an absolute http URL",
      });
      return;
    }
    log.path = form.path;
    if (!agent) {
      req.reply(407, "Proxy Authentication Required", ["Proxy-Authenticate", 'Basic realm="proxy"']);
      log.end({ ...AUTH_REQUIRED_OUTCOME });
      return;
    }
    let target: Target;
    try {
      target = parseTarget(form.authority, 80);
    } catch (err) {
      req.reply(400, "Bad Request");
      log.end({ decision: "denied", rule: null, reason: `refused: bad target: ${messageOf(err)}` });
      return;
    }
    log.target(target);
    let decision = policy.decide(agent, target);
    if (decision.verdict === "allow") decision = this.admit(policy, agent, decision, req);
    if (decision.verdict !== "allow") {
      this.refuseHttp(req);
      log.end(outcomeOf(decision));
      return;
    }
    const check = (a: string) => policy.checkAddress(agent, target, a);
    const forward = (checked: CheckedAddress) =>
      this.forwardHttp(req, agent, target, form, decision, checked, log);
    const failed = (err: unknown) => {
      // A bug here must cost one request, not the process: cut it and say why in the log.
      req.destroy();
      log.end({ decision: "denied", rule: null, reason: `internal error: ${messageOf(err)}` });
    };
    // An IP literal needs no lookup: decide and dial in this turn, without a promise per request.
    if (target.ip) {
      try {
        forward(checkAnswers(target, [target.ip], check));
      } catch (err) {
        failed(err);
      }
      return;
    }
    resolveChecked(target, check, this.resolver).then(forward).catch(failed);
  }

  private forwardHttp(
    req: FrontRequest,
    agent: Agent,
    target: Target,
    form: AbsoluteForm,
    decision: Decision,
    checked: CheckedAddress,
    log: RequestLogger,
  ): void {
    if (!checked.ok) {
      if (checked.refused) {
        this.refuseHttp(req);
        log.end(outcomeOf(checked.decision));
      } else {
        req.reply(502, "Bad Gateway");
        log.end({ ...outcomeOf(decision), reason: `${decision.reason}; ${checked.reason}` });
      }
      return;
    }
    if (req.socket.destroyed) {
      log.end({ ...combined(decision, checked.decision), reason: "client went away before dialling" });
      return;
    }
    log.upstreamAddress = checked.address;
    const exchange = new HttpExchange(
      req,
      log,
      combined(decision, checked.decision),
      this.masked,
      // Only a body is metered: a bodyless request (most of them) needs no meter of its own.
      req.hasBody ? this.meter(agent, decision.mode !== "audit") : UNMETERED,
    );
    exchange.release = this.tunnels.add(
      {
        agent: agent.id,
        fleet: agent.fleet ?? null,
        tier: agent.tier ?? null,
        kind: "http",
        host: target.host,
        port: target.port,
        openedAt: log.ts,
      },
      () => exchange.cut(),
    );
    req.watch(exchange);
    exchange.upstream = this.upstream.request(
      {
        address: checked.address,
        port: target.port,
        method: req.method,
        target: form.path + form.query,
        headers: upstreamRequestHeaders(req.rawHeaders, form.authority, this.masked, false),
        hasBody: req.hasBody,
      },
      exchange,
    );
    // Most requests have no body: the head alone was the whole request.
    if (req.hasBody) exchange.sendBody();
  }

  private refuseHttp(req: FrontRequest): void {
    if (this.opts.refusal === "reset") req.socket.resetAndDestroy();
    else req.reply(403, "Forbidden");
  }

  // ---- CONNECT and Upgrade: both end as a byte tunnel ---------------------------------------

  private onTunnel(req: FrontRequest, client: net.Socket, head: Buffer, kind: "connect" | "upgrade"): void {
    void this.tunnel(req, client, head, kind).catch((err: unknown) => {
      client.destroy();
      process.emitWarning(`shield: tunnel handler failed: ${messageOf(err)}`);
    });
  }

  private async tunnel(req: FrontRequest, client: net.Socket, head: Buffer, kind: "connect" | "upgrade") {
    const started = Date.now();
    client.pause();
    client.on("error", () => client.destroy());
    const log = this.logger(req, started);
    const policy = this.policy;
    if (!policy) {
      client.resetAndDestroy();
      return;
    }
    const agent = policy.identify(log.sourceAddress, parseProxyBasic(req.rawHeaders));
    log.agent(agent);
    let authority: string;
    let form: AbsoluteForm | null = null;
    if (kind === "connect") {
      authority = req.url;
      log.path = null;
    } else {
      // (The front refuses an Upgrade request whose framing is ambiguous before it gets here.)
      form = splitAbsoluteForm(req.url);
      if (!form) {
        rawReply(client, 400, "Bad Request");
        log.end({
          decision: "denied",
          rule: null,
          reason: "refused: request target is not an absolute http URL",
        });
        return;
      }
      authority = form.authority;
      log.path = form.path;
    }
    if (!agent) {
      rawReply(client, 407, "Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="proxy"\r\n');
      log.end({ ...AUTH_REQUIRED_OUTCOME });
      return;
    }
    let target: Target;
    try {
      // CONNECT names its port; without one it can only mean TLS.
      target = parseTarget(authority, kind === "connect" ? 443 : 80);
    } catch (err) {
      rawReply(client, 400, "Bad Request");
      log.end({ decision: "denied", rule: null, reason: `refused: bad target: ${messageOf(err)}` });
      return;
    }
    log.target(target);
    let decision = policy.decide(agent, target);
    // An upgrade's head goes upstream; a CONNECT's does not.
    if (decision.verdict === "allow")
      decision = this.admit(policy, agent, decision, kind === "upgrade" ? req : null);
    if (decision.verdict !== "allow") {
      this.refuseRaw(client);
      log.end(outcomeOf(decision));
      return;
    }
    let upstream: net.Socket | null = null;
    const release = this.tunnels.tryAdd(
      {
        agent: agent.id,
        fleet: agent.fleet ?? null,
        tier: agent.tier ?? null,
        kind,
        host: target.host,
        port: target.port,
        openedAt: started,
      },
      this.opts.limits.maxTunnelsPerAgent,
      () => {
        client.destroy();
        upstream?.destroy();
      },
    );
    if (!release) {
      rawReply(client, 429, "Too Many Requests");
      log.end({
        decision: "denied",
        rule: null,
        reason: `refused: ${this.opts.limits.maxTunnelsPerAgent} tunnels already open`,
      });
      return;
    }
    client.once("close", release);
    const checked = await resolveChecked(target, (a) => policy.checkAddress(agent, target, a), this.resolver);
    if (!checked.ok) {
      release();
      if (checked.refused) {
        this.refuseRaw(client);
        log.end(outcomeOf(checked.decision));
      } else {
        rawReply(client, 502, "Bad Gateway");
        log.end({ ...outcomeOf(decision), reason: `${decision.reason}; ${checked.reason}` });
      }
      return;
    }
    let outcome = combined(decision, checked.decision);
    log.upstreamAddress = checked.address;
    if (client.destroyed) {
      release();
      log.end({ ...outcome, reason: "client went away before dialling" });
      return;
    }
    const relay = relayTo(client, () => upstream, [this.bulkBuffers, this.largeBuffers]);
    try {
      upstream = await dial(checked.address, target.port, this.opts.limits.connectTimeoutMs, relay.onread);
    } catch (err) {
      release();
      const timeout = err instanceof DialError && err.code === "timeout";
      rawReply(client, timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway");
      log.end({ ...outcome, reason: `${outcome.reason}; ${messageOf(err)}` });
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      relay.release();
      release();
      log.end({ ...outcome, reason: "client went away while dialling" });
      return;
    }
    if (kind === "connect") {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    } else {
      const headers = upstreamRequestHeaders(req.rawHeaders, authority, this.masked, true);
      upstream.write(rawRequestHead(req.method, form!.path + form!.query, headers));
    }
    const meter = this.meter(agent, decision.mode !== "audit");
    const send = (n: number): boolean => {
      const over = meter(n);
      if (over === null) return true;
      outcome = overrunOutcome(outcome, over.overrun, over.cut);
      return !over.cut;
    };
    const headSent = head.length === 0 || send(head.length);
    if (headSent && head.length > 0) upstream.write(head);
    splice(client, upstream, this.opts.limits.idleTimeoutMs, send, () => {
      relay.release();
      release();
      // bytesWritten/bytesRead count exactly what crossed the upstream socket.
      log.end(outcome, upstream!.bytesWritten, upstream!.bytesRead);
    });
    // The bytes that came with the request head passed the budget: cut before any is sent.
    if (!headSent) client.destroy();
  }

  /**
   * A request or tunnel the rules allow, against the agent's budgets: refused when one is spent
   * (audited and let through in audit mode), otherwise counted with the bytes of `head`, the
   * request head it sends upstream. Agents without budgets pass untouched. `policy` is the one
   * that decided, so a reload in between cannot judge one request by two configs.
   */
  private admit(policy: ProxyPolicy, agent: Agent, decision: Decision, head: FrontRequest | null): Decision {
    const limits = policy.budgets(agent);
    if (limits.length === 0) return decision;
    const enforce = decision.mode !== "audit";
    const over = this.budgets.admit(agent.id, limits, head ? headBytesOf(head) : 0, enforce);
    // In audit mode a request the rules would deny is recorded for that, not for its budget.
    if (over === null || decision.audited) return decision;
    const reason = overrunReason(over);
    return enforce
      ? {
          ...decision,
          verdict: "deny",
          audited: false,
          rule: overrunRule(over),
          reason: `refused: ${reason}`,
        }
      : { ...decision, audited: true, rule: overrunRule(over), reason: `audit: ${reason}` };
  }

  /**
   * Counts the bytes an agent sends up one request or tunnel, under the budgets in force at
   * each chunk: null while they have room, else the overrun and whether to cut (not in audit).
   */
  private meter(agent: Agent, enforce: boolean): (n: number) => { overrun: Overrun; cut: boolean } | null {
    return (n) => {
      const limits = this.policy?.budgets(agent);
      if (!limits || limits.length === 0) return null;
      const overrun = this.budgets.spend(agent.id, limits, n, enforce);
      return overrun === null ? null : { overrun, cut: enforce };
    };
  }

  private refuseRaw(client: net.Socket): void {
    if (this.opts.refusal === "reset") client.resetAndDestroy();
    else rawReply(client, 403, "Forbidden");
  }

  // ---- malformed requests ------------------------------------------------------------------

  private onClientError(err: RequestError, socket: net.Socket): void {
    rawReply(socket, err.status, STATUS_TEXT[err.status]);
    // Closed for good once the answer is out, even if the client never closes its side.
    socket.destroySoon();
    this.opts.sink.append({
      ts: Date.now(),
      agent: null,
      fleet: null,
      tier: null,
      sourceAddress: sourceOf(socket),
      method: "",
      host: "",
      port: 0,
      path: null,
      decision: "denied",
      rule: null,
      reason: `refused: malformed request (${err.message})`,
      upstreamAddress: null,
      bytesUp: 0,
      bytesDown: 0,
      durationMs: 0,
    });
  }

  private logger(req: FrontRequest, started: number): RequestLogger {
    return new RequestLogger(this.opts.sink, started, sourceOf(req.socket), req.method);
  }
}

/**
 * One plain HTTP request relayed: the request body to the destination and the response back,
 * each with backpressure, and the request's log record once the client's response is done.
 */
class HttpExchange implements UpstreamHandler, ResponseWatcher {
  upstream: Exchange | null = null;
  release: (() => void) | null = null;
  private up = 0;
  private down = 0;
  private failure: string | null = null;

  constructor(
    private readonly req: FrontRequest,
    private readonly log: RequestLogger,
    private outcome: Outcome,
    private readonly masked: ReadonlySet<string>,
    private readonly meter: (n: number) => { overrun: Overrun; cut: boolean } | null,
  ) {}

  /** Stream the request body to the destination, as far as the agent's budgets let it. */
  sendBody(): void {
    this.req.takeBody(
      (chunk) => {
        const over = this.meter(chunk.length);
        if (over !== null) {
          this.outcome = overrunOutcome(this.outcome, over.overrun, over.cut);
          if (over.cut) {
            this.cut();
            return false;
          }
        }
        this.up += chunk.length;
        return this.upstream ? this.upstream.write(chunk) : true;
      },
      () => this.upstream?.end(),
    );
  }

  onDrain(): void {
    // The destination takes more of the request body: read more of it.
    this.req.resumeBody();
  }

  onWritable(): void {
    this.upstream?.resume();
  }

  onContinue(): void {
    this.req.writeContinue();
  }

  onResponse(status: number, reason: string, rawHeaders: string[]): void {
    if (this.req.destroyed) return;
    this.req.writeHead(status, reason, downstreamResponseHeaders(rawHeaders, this.masked));
  }

  onData(chunk: Buffer): boolean {
    this.down += chunk.length;
    const { req } = this;
    if (req.destroyed) return true;
    // False: `onDrain` resumes the destination once the client's socket has room.
    return req.write(chunk);
  }

  onEnd(): void {
    this.req.end();
  }

  onError(err: Error): void {
    const { req } = this;
    this.failure = err.message;
    if (!req.headersSent && !req.destroyed) {
      const timeout = err instanceof DialError && err.code === "timeout";
      req.keepAlive = false;
      req.reply(timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway");
    } else {
      req.destroy();
    }
  }

  /** Lockdown or shutdown: cut both sides now. */
  cut(): void {
    this.upstream?.abort();
    this.req.destroy();
  }

  /** The client's response is done (sent, or cut): release the slot and write the record. */
  onClose(): void {
    this.release?.();
    const { req, outcome } = this;
    const failure = this.failure ?? req.failure;
    // A response cut short, or a request body that broke off, leaves the destination's side unusable.
    if (!req.complete || req.failure) this.upstream?.abort();
    this.log.end(
      failure ? { ...outcome, reason: `${outcome.reason}; ${failure}` } : outcome,
      this.up,
      this.down,
    );
  }
}

/** Builds the one log record of a request; `end` emits it once, later calls are ignored. */
class RequestLogger {
  agentId: string | null = null;
  fleet: string | null = null;
  tier: string | null = null;
  host = "";
  port = 0;
  path: string | null = null;
  upstreamAddress: string | null = null;
  private done = false;

  constructor(
    private readonly sink: LogSink,
    readonly ts: number,
    readonly sourceAddress: string,
    private readonly method: string,
  ) {}

  agent(agent: Agent | null): void {
    if (!agent) return;
    this.agentId = agent.id;
    this.fleet = agent.fleet ?? null;
    this.tier = agent.tier ?? null;
  }

  target(target: Target): void {
    this.host = target.host;
    this.port = target.port;
  }

  end(outcome: Outcome, bytesUp = 0, bytesDown = 0): void {
    if (this.done) return;
    this.done = true;
    this.sink.append({
      ts: this.ts,
      agent: this.agentId,
      fleet: this.fleet,
      tier: this.tier,
      sourceAddress: this.sourceAddress,
      method: this.method,
      host: this.host,
      port: this.port,
      path: this.path,
      decision: outcome.decision,
      rule: outcome.rule,
      reason: outcome.reason,
      upstreamAddress: this.upstreamAddress,
      bytesUp,
      bytesDown,
      durationMs: Date.now() - this.ts,
    });
  }
}

interface AbsoluteForm {
  authority: string;
  /** Path without the query, "/" when the URL had none. */
  path: string;
  /** "?..." or "". */
  query: string;
}

/** `http://authority/path?query` split by hand: `new URL` would "fix" the authority first. */
function splitAbsoluteForm(url: string): AbsoluteForm | null {
  const m = /^(http|ws):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?/i.exec(url);
  if (!m || !m[2]) return null;
  return { authority: m[2], path: m[3] || "/", query: m[4] ?? "" };
}

function sourceOf(socket: net.Socket): string {
  const a = socket.remoteAddress ?? "";
  // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; agents are configured by IPv4.
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

function rawReply(socket: net.Socket, status: number, text: string, extraHeaders = ""): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\n${extraHeaders}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function rawRequestHead(method: string, path: string, headers: readonly string[]): string {
  let out = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return out + "\r\n";
}

/**
 * Pipe both ways with backpressure. Each socket both reads and writes, and either refreshes its
 * timer, so `idleMs` means no bytes in either direction. A close on either side tears down both. `onClose` runs once, after both sockets are closed.
 * Every chunk from a goes through `send` first: false tears both down before it is written.
 */
function splice(
  a: net.Socket,
  b: net.Socket,
  idleMs: number,
  send: (n: number) => boolean,
  onClose: () => void,
): void {
  // b's bytes already go to a through relayTo (dialled with it); a -> b is copied here, each
  // chunk metered against the agent's upload budgets.
  let closed = 0;
  const teardown = () => {
    a.destroy();
    b.destroy();
  };
  const onSocketClose = () => {
    teardown();
    if (++closed === 2) onClose();
  };
  for (const s of [a, b]) {
    s.setTimeout(idleMs, teardown);
    s.on("error", teardown);
    s.once("close", onSocketClose);
  }
  a.on("data", (chunk: Buffer) => {
    if (!send(chunk.length)) teardown();
    else if (!b.write(chunk)) a.pause();
  });
  b.on("drain", () => a.resume());
  a.once("end", () => b.end());
  b.once("end", () => a.end());
  // The tunnel's client was paused until the destination answered.
  a.resume();
}

/** What sends nothing up: the meter of a request without a body. */
const UNMETERED = (): null => null;

/** Bytes of a request's line and header fields as the agent sent them. */
function headBytesOf(req: FrontRequest): number {
  let n = req.method.length + req.url.length + 12;
  const h = req.rawHeaders;
  for (let i = 0; i < h.length; i++) n += h[i]!.length + 2;
  return n;
}

/** A tunnel's or request's outcome once a budget ran out under it. */
function overrunOutcome(outcome: Outcome, overrun: Overrun, cut: boolean): Outcome {
  if (!cut) {
    // Audit: the record names the first thing audit let through, a rule's or a budget's.
    if (outcome.decision === "audited") return outcome;
    return { decision: "audited", rule: overrunRule(overrun), reason: `audit: ${overrunReason(overrun)}` };
  }
  return { decision: "denied", rule: overrunRule(overrun), reason: `${CUT_PREFIX}${overrunReason(overrun)}` };
}

/** Read buffer of a tunnel's upstream: small to start with and for light traffic. */
const FIRST_READ_BYTES = 1024;
const MEDIUM_READ_BYTES = 64 * 1024;
/**
 * Read buffer while a tunnel streams in bulk (each read filled the one before): a read of 1 MiB
 * and one write of it cost half the CPU per MB of 64 KiB pieces, whose syscalls and callbacks
 * dominate the copy itself.
 */
const BULK_READ_BYTES = 1024 * 1024;
/** Bulk buffers lent at once: parallel bulk downloads hold at most 64 MiB of them. */
const MAX_BULK_BUFFERS = 64;
/**
 * Read buffer while 1 MiB reads keep coming back full: the destination sends faster than the
 * shield reads. On loopback, with reads and writes of 8 MiB a tunnel moved 1.5x what it moved
 * at 1 MiB (fewer system calls and wake-ups per MB, and the two cores less often idle between
 * them); 4 MiB did less, 16 MiB no better.
 */
const LARGE_READ_BYTES = 8 * 1024 * 1024;
/** Large buffers lent at once: at most 64 MiB more. */
const MAX_LARGE_BUFFERS = 8;

/** A tunnel's download path: read options for the upstream socket, and what to do at its end. */
interface Relay {
  onread: net.OnReadOpts;
  /** Both sockets are closed: hand the lent buffers still held back to their pools. */
  release(): void;
}

/**
 * Read options for a tunnel's upstream socket that write every read straight to `client`.
 * Reads land in a buffer of the tunnel's own instead of a fresh allocation each (whose page
 * faults and collection cost several times the copy itself). The buffer grows while reads fill
 * it: 1 KiB, 64 KiB, then one lent by each pool of `tiers` in turn (1 MiB, 8 MiB) if it has
 * one free. A lent buffer goes back as soon as a read does not need it, so an idle or
 * interactive tunnel holds at most 64 KiB. While any of the last read waits in the client's
 * queue (the kernel took less than all), reading stops, so a buffer is never overwritten, nor
 * returned, under a pending write; the write's callback starts reading again.
 */
function relayTo(
  client: net.Socket,
  upstream: () => net.Socket | null,
  tiers: readonly BulkBuffers[],
): Relay {
  let current: Buffer | null = null;
  let medium: Buffer | null = null;
  /** The buffer read into now, when a pool lent it, and that pool's place in `tiers`. */
  let lent: Buffer | null = null;
  let tier = -1;
  /** Lent buffers no longer read into; each goes back once no write from it is pending. */
  const retired: Array<{ buf: Buffer; pool: BulkBuffers }> = [];
  let paused = false;
  const retire = () => {
    if (lent) retired.push({ buf: lent, pool: tiers[tier]! });
    lent = null;
    tier = -1;
  };
  const giveBackRetired = () => {
    for (const r of retired) r.pool.give(r.buf);
    retired.length = 0;
  };
  const written = () => {
    // An earlier write's callback can run after a later write was queued: wait for that one too.
    if (client.writableLength > 0) return;
    if (retired.length > 0) giveBackRetired();
    if (!paused) return;
    paused = false;
    upstream()?.resume();
  };
  const onread: net.OnReadOpts = {
    // Called once at connect and again after each read: the buffer for the next read.
    buffer: () => current ?? (current = Buffer.allocUnsafe(FIRST_READ_BYTES)),
    callback: (n: number, buf: Uint8Array) => {
      if (client.destroyed) return false;
      // The next read's buffer: larger if this one was filled, back to 64 KiB if bulk is over.
      if (n === buf.length) {
        if (buf.length < MEDIUM_READ_BYTES) current = medium ??= Buffer.allocUnsafe(MEDIUM_READ_BYTES);
        else if (tier + 1 < tiers.length) {
          // None free: stay at this size.
          const next = tiers[tier + 1]!.take();
          if (next) {
            const up = tier + 1;
            retire();
            lent = current = next;
            tier = up;
          }
        }
      } else if (n < MEDIUM_READ_BYTES && lent !== null) {
        retire();
        current = medium;
      }
      client.write(buf.subarray(0, n), written);
      if (client.writableLength === 0) {
        if (retired.length > 0) giveBackRetired();
        return true;
      }
      paused = true;
      return false;
    },
  };
  return {
    onread,
    release: () => {
      retire();
      giveBackRetired();
    },
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
