/**
 * CONNECT tunnels and WebSocket upgrades, once admitted: a slot under the agent's tunnel limit,
 * the checked address dialled, then bytes both ways with the upload side metered. A CONNECT is
 * answered 200 once the destination accepts the connection. An upgrade is sent as a request
 * and becomes a byte stream only when the destination answers 101: until then nothing more of
 * the agent's goes upstream, and any other answer is relayed as a response that closes the
 * connection, so no request can ride an upgrade the destination refused past the shield unread.
 */
import type net from "node:net";
import type { Admitted } from "../admission/index.js";
import { dial, DialError } from "../net/dial.js";
import type { Outcome } from "../policy/outcome.js";
import type { Agent } from "../types.js";
import type { BulkBuffers } from "./bulk-buffers.js";
import type { FrontRequest } from "./front-api.js";
import { downstreamResponseHeaders, upstreamRequestHeaders } from "./headers.js";
import { overrunOutcome, type Meter } from "./metering.js";
import { messageOf, rawReply, rawResponseHead } from "./raw.js";
import { relayTo } from "./relay.js";
import type { RequestLogger } from "./request-log.js";
import type { ConnectionTracker } from "./tracker.js";
import type { Exchange, UpstreamPool } from "./upstream.js";

/** What a tunnel needs of the proxy that opened it. */
export interface TunnelHost {
  readonly tunnels: ConnectionTracker;
  readonly upstream: UpstreamPool;
  /** The read buffer pools a bulk download moves up through (1 MiB, then 8 MiB). */
  readonly bulkTiers: readonly BulkBuffers[];
  readonly masked: ReadonlySet<string>;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxTunnelsPerAgent: number;
  meter(agent: Agent, enforce: boolean): Meter;
}

/**
 * Take a tunnel slot for the admitted request, or answer 429. Returns the release, or null when
 * the agent is at its limit (the record is written).
 */
function takeSlot(
  host: TunnelHost,
  a: Admitted,
  kind: "connect" | "upgrade",
  client: net.Socket,
  log: RequestLogger,
  cut: () => void,
  transparent = false,
): (() => void) | null {
  const { agent, target } = a;
  const release = host.tunnels.tryAdd(
    {
      agent: agent.id,
      fleet: agent.fleet ?? null,
      tier: agent.tier ?? null,
      kind,
      host: target.host,
      port: target.port,
      openedAt: log.ts,
    },
    host.maxTunnelsPerAgent,
    cut,
  );
  if (!release) {
    if (transparent) client.destroy();
    else rawReply(client, 429, "Too Many Requests");
    log.end({
      decision: "denied",
      rule: null,
      reason: `refused: ${host.maxTunnelsPerAgent} tunnels already open`,
    });
    return null;
  }
  client.once("close", release);
  return release;
}

/** A sender that meters each piece the agent sends up, noting an overrun in the outcome. */
function sender(host: TunnelHost, a: Admitted, outcome: { now: Outcome }): (n: number) => boolean {
  const meter = host.meter(a.agent, a.decision.mode !== "audit");
  return (n) => {
    const over = meter(n);
    if (over === null) return true;
    outcome.now = overrunOutcome(outcome.now, over.overrun, over.cut);
    return !over.cut;
  };
}

/**
 * An admitted CONNECT: dial, answer 200, relay. `transparent`: the agent dialled the
 * destination itself and its TLS bytes are already in `head`; there is no proxy protocol to
 * answer in, so a failure closes the connection.
 */
export async function openConnect(
  host: TunnelHost,
  a: Admitted,
  client: net.Socket,
  head: Buffer,
  log: RequestLogger,
  transparent = false,
): Promise<void> {
  let upstream: net.Socket | null = null;
  const release = takeSlot(
    host,
    a,
    "connect",
    client,
    log,
    () => {
      client.destroy();
      upstream?.destroy();
    },
    transparent,
  );
  if (!release) return;
  const outcome = { now: a.outcome };
  if (client.destroyed) {
    release();
    log.end({ ...outcome.now, reason: "client went away before dialling" });
    return;
  }
  const relay = relayTo(client, () => upstream, host.bulkTiers);
  try {
    upstream = await dial(a.address!, a.target.port, host.connectTimeoutMs, relay.onread);
  } catch (err) {
    release();
    const timeout = err instanceof DialError && err.code === "timeout";
    if (transparent) client.destroy();
    else rawReply(client, timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway");
    log.end({ ...outcome.now, reason: `${outcome.now.reason}; ${messageOf(err)}` });
    return;
  }
  if (client.destroyed) {
    upstream.destroy();
    relay.release();
    release();
    log.end({ ...outcome.now, reason: "client went away while dialling" });
    return;
  }
  if (!transparent) client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  const up = upstream;
  relayBoth(host, a, client, up, head, outcome, false, () => {
    relay.release();
    release();
    // bytesWritten/bytesRead count exactly what crossed the upstream socket.
    log.end(outcome.now, up.bytesWritten, up.bytesRead);
  });
}

export function openUpgrade(
  host: TunnelHost,
  a: Admitted,
  req: FrontRequest,
  client: net.Socket,
  head: Buffer,
  log: RequestLogger,
): void {
  let upstream: net.Socket | null = null;
  let exchange: Exchange | null = null;
  const release = takeSlot(host, a, "upgrade", client, log, () => {
    client.destroy();
    upstream?.destroy();
    exchange?.abort();
  });
  if (!release) return;
  const outcome = { now: a.outcome };
  let down = 0;
  let answered = false;
  const notUpgraded = (status: number) =>
    `${outcome.now.reason}; the destination answered ${status}, not 101 Switching Protocols: relayed, and the connection closed`;
  client.once("close", () => {
    // The upgrade never happened: the exchange ends with the agent's connection.
    if (upstream === null) {
      exchange?.abort();
      log.end(outcome.now, 0, down);
    }
  });
  try {
    exchange = host.upstream.request(
      {
        address: a.address!,
        port: a.target.port,
        method: req.method,
        target: a.path! + a.query,
        headers: upstreamRequestHeaders(req.rawHeaders, a.authority!, host.masked, true),
        hasBody: false,
        upgrade: true,
      },
      {
        onUpgrade(socket, responseHead, rest) {
          upstream = socket;
          answered = true;
          if (client.destroyed) {
            socket.destroy();
            release();
            log.end({ ...outcome.now, reason: "client went away before the upgrade" });
            return;
          }
          client.write(responseHead);
          if (rest.length > 0) client.write(rest);
          relayBoth(host, a, client, socket, head, outcome, true, () => {
            release();
            log.end(outcome.now, socket.bytesWritten, socket.bytesRead);
          });
        },
        onResponse(status, reason, rawHeaders) {
          answered = true;
          if (client.destroyed) return;
          outcome.now = { ...outcome.now, reason: notUpgraded(status) };
          client.write(rawResponseHead(status, reason, downstreamResponseHeaders(rawHeaders, host.masked)));
        },
        onData(chunk) {
          down += chunk.length;
          return client.destroyed || client.write(chunk);
        },
        onEnd() {
          // Closed for good once the response is out: nothing more of this connection is read.
          client.destroySoon();
        },
        onError(err) {
          outcome.now = { ...outcome.now, reason: `${outcome.now.reason}; ${messageOf(err)}` };
          if (answered) {
            client.destroy();
            return;
          }
          const timeout = err instanceof DialError && err.code === "timeout";
          rawReply(client, timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway");
        },
        onContinue() {},
        onDrain() {},
      },
    );
  } catch (err) {
    // A head that cannot be written as is (checked by the client before anything is sent).
    rawReply(client, 400, "Bad Request");
    outcome.now = { decision: "denied", rule: null, reason: `refused: ${messageOf(err)}` };
    return;
  }
  const ex = exchange;
  client.on("drain", () => {
    if (upstream === null) ex.resume();
  });
  client.setTimeout(host.idleTimeoutMs, () => {
    if (upstream === null) client.destroy();
  });
}

/**
 * Bytes both ways between the agent and the destination until either side closes. The
 * agent's side is metered (`head` first: the bytes that came with the request head). The
 * destination's side is already wired for a CONNECT (the socket was dialled with `relayTo`);
 * with `back` it is piped here.
 */
function relayBoth(
  host: TunnelHost,
  a: Admitted,
  client: net.Socket,
  upstream: net.Socket,
  head: Buffer,
  outcome: { now: Outcome },
  back: boolean,
  onClose: () => void,
): void {
  const send = sender(host, a, outcome);
  const headSent = head.length === 0 || send(head.length);
  if (headSent && head.length > 0) upstream.write(head);
  splice(client, upstream, host.idleTimeoutMs, send, back, onClose);
  // The bytes that came with the request head passed the budget: cut before any is sent.
  if (!headSent) client.destroy();
}

/**
 * Pipe a -> b with backpressure, each chunk through `send` first (false tears both down before
 * it is written); with `back`, b -> a too. Each socket both reads and writes, and either
 * refreshes its timer, so `idleMs` means no bytes in either direction. A close on either side
 * tears down both; `onClose` runs once, after both sockets are closed.
 */
function splice(
  a: net.Socket,
  b: net.Socket,
  idleMs: number,
  send: (n: number) => boolean,
  back: boolean,
  onClose: () => void,
): void {
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
  if (back) {
    b.on("data", (chunk: Buffer) => {
      if (!a.write(chunk)) b.pause();
    });
    a.on("drain", () => b.resume());
    b.resume();
  }
  // The tunnel's client was paused until the destination answered.
  a.resume();
}
