import type net from "node:net";
import type { AddressInfo } from "node:net";
import { Admissions, type Admission, type AdmissionPolicy, type Refusal } from "../admission/index.js";
import { BudgetMeter } from "../admission/budget.js";
import { SOCKET_HIGH_WATER_MARK } from "../net/dial.js";
import { systemResolver, type Resolver } from "../net/resolve.js";
import type { Agent, LogSink } from "../types.js";
import { FrontServer } from "./front.js";
import { STATUS_TEXT, type Front, type FrontRequest, type RequestError } from "./front-api.js";
import { NodeFront } from "./node-front.js";
import { BulkBuffers } from "./bulk-buffers.js";
import { parseProxyBasic, upstreamRequestHeaders } from "./headers.js";
import { HttpExchange } from "./http-exchange.js";
import { UNMETERED, type Meter } from "./metering.js";
import { messageOf, rawReply, sourceOf } from "./raw.js";
import { BULK_READ_BYTES, LARGE_READ_BYTES, MAX_BULK_BUFFERS, MAX_LARGE_BUFFERS } from "./relay.js";
import { RequestLogger } from "./request-log.js";
import { openConnect, openUpgrade, type TunnelHost } from "./tunnel.js";
import { ConnectionTracker } from "./tracker.js";
import { UpstreamPool } from "./upstream.js";

/** What the data path needs from the policy; `Policy` from ../policy satisfies it. */
export type ProxyPolicy = AdmissionPolicy;

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
  /** Seconds each decision took, from the name decision to the last address check. */
  onLatency?: (seconds: number) => void;
  /** What reads agents' requests: the shield's own HTTP/1.1 server (default) or Node's. */
  httpServer?: "clawguard" | "node";
}

/**
 * The shield's data path: HTTP forwarding (absolute-form), WebSocket upgrades and CONNECT
 * tunnels. Each request goes through admission (who, where, rules, budgets, every address
 * checked); the proxy dials the one address admission checked and relays bytes, and every
 * request or tunnel ends in exactly one log record. Until a policy is set every connection is
 * reset (fail closed).
 */
export class ShieldProxy implements TunnelHost {
  readonly server: net.Server;
  /** Open tunnels and in-flight HTTP exchanges, for the tunnel limit and for lockdown. */
  readonly tunnels = new ConnectionTracker();
  private readonly front: Front;
  private policy: ProxyPolicy | null = null;
  readonly masked: ReadonlySet<string>;
  readonly upstream: UpstreamPool;
  readonly bulkTiers: readonly BulkBuffers[];
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxTunnelsPerAgent: number;
  /** The one path every request is decided on. */
  readonly admissions: Admissions;
  /** 1 MiB read buffers for tunnels streaming in bulk, lent and returned. */
  readonly bulkBuffers: BulkBuffers;
  /** 8 MiB read buffers for the tunnels whose 1 MiB reads come back full. */
  readonly largeBuffers: BulkBuffers;
  /** What each agent sent and opened in its budgets' windows. */
  readonly budgets = new BudgetMeter();
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly opts: ProxyOptions) {
    this.masked = new Set((opts.stripHeaders ?? []).map((h) => h.toLowerCase()));
    this.admissions = new Admissions({
      resolver: opts.resolver ?? systemResolver,
      budgets: this.budgets,
      ...(opts.onLatency ? { onLatency: opts.onLatency } : {}),
    });
    this.bulkBuffers = new BulkBuffers(BULK_READ_BYTES, opts.maxBulkBuffers ?? MAX_BULK_BUFFERS);
    // One kept idle: 8 MiB held after every transfer would show in the resident size.
    this.largeBuffers = new BulkBuffers(LARGE_READ_BYTES, opts.maxLargeBuffers ?? MAX_LARGE_BUFFERS, 1);
    this.bulkTiers = [this.bulkBuffers, this.largeBuffers];
    const { limits } = opts;
    this.connectTimeoutMs = limits.connectTimeoutMs;
    this.idleTimeoutMs = limits.idleTimeoutMs;
    this.maxTunnelsPerAgent = limits.maxTunnelsPerAgent;
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

  /** The policy in force (null until one is set: every connection is then refused). */
  currentPolicy(): ProxyPolicy | null {
    return this.policy;
  }

  /** Where every request's record goes. */
  get sink(): LogSink {
    return this.opts.sink;
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

  /**
   * The HTTP server of gateway mode's transparent port: agents that believe they talk to the
   * destination itself send origin-form requests, whose Host decides, and are known by their
   * address alone. Listen on its `server`.
   */
  transparentHttp(): Front {
    const { limits } = this.opts;
    const Server = this.opts.httpServer === "node" ? NodeFront : FrontServer;
    const front = new Server(
      {
        maxHeaderBytes: limits.maxHeaderBytes,
        headerTimeoutMs: limits.headerTimeoutMs,
        keepAliveTimeoutMs: Math.min(5000, limits.idleTimeoutMs),
        idleTimeoutMs: limits.idleTimeoutMs,
        highWaterMark: SOCKET_HIGH_WATER_MARK,
      },
      {
        request: (req) => this.onRequest(req, true),
        tunnel: (req, socket, head, kind) => this.onTunnel(req, socket, head, kind, true),
        clientError: (err, socket) => this.onClientError(err, socket),
      },
    );
    front.server.on("connection", (s: net.Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
      if (!this.policy) s.resetAndDestroy();
    });
    return front;
  }

  private onRequest(req: FrontRequest, transparent = false): void {
    const policy = this.policy;
    if (!policy) {
      req.socket.resetAndDestroy();
      return;
    }
    const log = this.logger(req, Date.now());
    const failed = (err: unknown) => {
      // A bug here must cost one request, not the process: cut it and say why in the log.
      req.destroy();
      log.end({ decision: "denied", rule: null, reason: `internal error: ${messageOf(err)}` });
    };
    try {
      const admission = this.admissions.admit(policy, {
        kind: "http",
        target: transparent ? originTarget(req) : req.url,
        caller: transparent
          ? { source: log.sourceAddress }
          : { source: log.sourceAddress, basic: parseProxyBasic(req.rawHeaders) },
        ambiguous: req.ambiguous,
        headBytes: () => headBytesOf(req),
      });
      // An IP literal needs no lookup: decided and dialled in this turn, without a promise.
      if (admission instanceof Promise)
        admission.then((a) => this.forwardHttp(req, a, log, transparent)).catch(failed);
      else this.forwardHttp(req, admission, log, transparent);
    } catch (err) {
      failed(err);
    }
  }

  private forwardHttp(req: FrontRequest, a: Admission, log: RequestLogger, transparent: boolean): void {
    log.admitted(a);
    if (!a.ok) {
      // No proxy credentials can help a client that does not know it talks to a proxy.
      this.answerHttp(req, transparent && a.status === 407 ? { ...a, status: 403 } : a);
      log.end(a.outcome, a.upload);
      return;
    }
    if (req.socket.destroyed) {
      log.end({ ...a.outcome, reason: "client went away before dialling" });
      return;
    }
    const { agent, target } = a;
    const exchange = new HttpExchange(
      req,
      log,
      a.outcome,
      a.upload,
      this.masked,
      // Only a body is metered: a bodyless request (most of them) needs no meter of its own.
      req.hasBody ? this.meter(agent, a.decision.mode !== "audit") : UNMETERED,
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
        address: a.address!,
        port: target.port,
        method: req.method,
        target: a.path! + a.query,
        headers: upstreamRequestHeaders(req.rawHeaders, a.authority!, this.masked, false),
        hasBody: req.hasBody,
      },
      exchange,
    );
    // Most requests have no body: the head alone was the whole request.
    if (req.hasBody) exchange.sendBody();
  }

  private answerHttp(req: FrontRequest, r: Refusal): void {
    switch (r.status) {
      case 403:
        if (this.opts.refusal === "reset") req.socket.resetAndDestroy();
        else req.reply(403, "Forbidden");
        return;
      case 407:
        req.reply(407, "Proxy Authentication Required", ["Proxy-Authenticate", 'Basic realm="proxy"']);
        return;
      case 400:
        req.reply(400, "Bad Request");
        return;
      case 502:
        req.reply(502, "Bad Gateway");
        return;
    }
  }

  // ---- CONNECT and Upgrade: both end as a byte tunnel ---------------------------------------

  private onTunnel(
    req: FrontRequest,
    client: net.Socket,
    head: Buffer,
    kind: "connect" | "upgrade",
    transparent = false,
  ): void {
    client.pause();
    client.on("error", () => client.destroy());
    const policy = this.policy;
    if (!policy) {
      client.resetAndDestroy();
      return;
    }
    const log = this.logger(req, Date.now());
    const failed = (err: unknown) => {
      client.destroy();
      log.end({ decision: "denied", rule: null, reason: `internal error: ${messageOf(err)}` });
      process.emitWarning(`shield: tunnel handler failed: ${messageOf(err)}`);
    };
    const go = (a: Admission) => {
      log.admitted(a);
      if (!a.ok) {
        this.answerRaw(client, transparent && a.status === 407 ? { ...a, status: 403 } : a);
        log.end(a.outcome);
      } else if (kind === "connect") {
        openConnect(this, a, client, head, log).catch(failed);
      } else {
        openUpgrade(this, a, req, client, head, log);
      }
    };
    try {
      const admission = this.admissions.admit(policy, {
        kind,
        // A CONNECT sent to a destination's own port is no request for a tunnel: refused as unreadable.
        target: !transparent ? req.url : kind === "connect" ? "" : originTarget(req),
        caller: transparent
          ? { source: log.sourceAddress }
          : { source: log.sourceAddress, basic: parseProxyBasic(req.rawHeaders) },
        // (The front refuses an Upgrade request whose framing is ambiguous before it gets here.)
        headBytes: () => headBytesOf(req),
      });
      if (admission instanceof Promise) admission.then(go).catch(failed);
      else go(admission);
    } catch (err) {
      failed(err);
    }
  }

  private answerRaw(client: net.Socket, r: Refusal): void {
    switch (r.status) {
      case 403:
        if (this.opts.refusal === "reset") client.resetAndDestroy();
        else rawReply(client, 403, "Forbidden");
        return;
      case 407:
        rawReply(client, 407, "Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="proxy"\r\n');
        return;
      case 400:
        rawReply(client, 400, "Bad Request");
        return;
      case 502:
        rawReply(client, 502, "Bad Gateway");
        return;
    }
  }

  /**
   * Counts the bytes an agent sends up one request or tunnel, under the budgets in force at
   * each chunk: null while they have room, else the overrun and whether to cut (not in audit).
   */
  meter(agent: Agent, enforce: boolean): Meter {
    return (n) => {
      const limits = this.policy?.budgets(agent);
      if (!limits || limits.length === 0) return null;
      const overrun = this.budgets.spend(agent.id, limits, n, enforce);
      return overrun === null ? null : { overrun, cut: enforce };
    };
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
 * An origin-form request as the absolute URL a proxy would have been sent: its Host names the
 * destination (the front allows exactly one in HTTP/1.1). Without a path or a Host there is no
 * destination: the empty target is refused as unreadable.
 */
function originTarget(req: FrontRequest): string {
  if (!req.url.startsWith("/")) return "";
  const h = req.rawHeaders;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i]!.length === 4 && h[i]!.toLowerCase() === "host") return `http://${h[i + 1]}${req.url}`;
  }
  return "";
}

/** Bytes of a request's line and header fields as the agent sent them. */
function headBytesOf(req: FrontRequest): number {
  let n = req.method.length + req.url.length + 12;
  const h = req.rawHeaders;
  for (let i = 0; i < h.length; i++) n += h[i]!.length + 2;
  return n;
}
