/**
 * Transparent TLS in gateway mode: an agent's TCP to port 443 of any address is redirected here
 * by the shield's nftables table. The shield reads the ClientHello's server name without
 * decrypting, decides on it on the one admission path (as a CONNECT to that name), resolves the
 * name itself and connects to the address it checked, never to the one the agent dialled: a
 * forged server name sent towards another address gains nothing but the named server. Its bytes
 * are then relayed both ways, as a CONNECT tunnel's are.
 *
 * Refused, with a record that says why: a ClientHello without a server name, with an IP
 * address as its name, or offering Encrypted Client Hello (its visible name is not the
 * destination); anything that is not TLS; a ClientHello that does not arrive in time. A
 * refusal closes the connection (there is no protocol in which to answer).
 */
import net from "node:net";
import type { AdmissionPolicy, Admissions } from "../admission/index.js";
import { formatHostPort } from "../../net/hostport.js";
import { canonicalHost, TargetError } from "../policy/normalize.js";
import { UNKNOWN_SOURCE_REASON } from "../policy/outcome.js";
import { sourceOf } from "../proxy/raw.js";
import { RequestLogger } from "../proxy/request-log.js";
import { openConnect, type TunnelHost } from "../proxy/tunnel.js";
import type { LogSink } from "../types.js";
import { MAX_CLIENT_HELLO, readClientHello, type ClientHello } from "./client-hello.js";

/** What the transparent listener needs of the proxy it belongs to. */
export interface TransparentHost extends TunnelHost {
  readonly admissions: Admissions;
  readonly sink: LogSink;
  /** The policy in force, or null before one is set (every connection is then closed). */
  currentPolicy(): AdmissionPolicy | null;
  /** The proxy's HTTP server for origin-form requests, decided by their Host. */
  transparentHttp(): { server: net.Server; closeIdle(): void };
}

/** How the log names a transparent TLS connection's method. */
export const TLS_METHOD = "TLS";

export class TransparentTls {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly host: TransparentHost,
    private readonly opts: {
      /** The destination port that is intercepted: the one the shield dials. */
      port: number;
      headerTimeoutMs: number;
    },
  ) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.accept(s));
  }

  listen(address: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: address, port }, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    if (!this.host.currentPolicy()) {
      socket.resetAndDestroy();
      return;
    }
    const log = new RequestLogger(this.host.sink, Date.now(), sourceOf(socket), TLS_METHOD);
    const chunks: Buffer[] = [];
    let size = 0;
    let read = false;
    const timer = setTimeout(() => {
      socket.off("data", onData);
      refuse(`refused: no complete ClientHello within ${this.opts.headerTimeoutMs} ms`);
    }, this.opts.headerTimeoutMs);
    const refuse = (reason: string) => {
      read = true;
      clearTimeout(timer);
      log.end({ decision: "denied", rule: null, reason });
      socket.resetAndDestroy();
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      const hello = readClientHello(bytes);
      if (hello.kind === "incomplete" && size <= MAX_CLIENT_HELLO) return;
      read = true;
      clearTimeout(timer);
      socket.off("data", onData);
      // Nothing more is read until the destination is dialled: the tunnel takes over from here.
      socket.pause();
      const name = nameOf(hello);
      if (typeof name !== "string") return refuse(`refused: ${name.why}`);
      void this.decide(socket, name, bytes, log).catch((err: unknown) => {
        socket.destroy();
        log.end({ decision: "denied", rule: null, reason: `internal error: ${String(err)}` });
      });
    };
    socket.on("data", onData);
    socket.once("end", () => {
      if (!read) refuse("refused: the connection ended before a complete ClientHello");
    });
  }

  private async decide(socket: net.Socket, name: string, hello: Buffer, log: RequestLogger): Promise<void> {
    const policy = this.host.currentPolicy();
    if (!policy) {
      socket.resetAndDestroy();
      return;
    }
    const a = await this.host.admissions.admit(policy, {
      kind: "connect",
      target: formatHostPort(name, this.opts.port),
      caller: { source: log.sourceAddress },
    });
    log.admitted(a);
    if (!a.ok) {
      log.end(a.status === 407 ? { ...a.outcome, reason: UNKNOWN_SOURCE_REASON } : a.outcome);
      socket.resetAndDestroy();
      return;
    }
    await openConnect(this.host, a, socket, hello, log, true);
  }
}

/** The server name to decide on, or why there is none the shield can use. */
function nameOf(hello: ClientHello): string | { why: string } {
  switch (hello.kind) {
    case "sni":
      break;
    case "no-sni":
      return { why: "TLS without a server name: the destination cannot be known" };
    case "ech":
      return {
        why: `Encrypted Client Hello hides the destination${hello.outer ? ` (shown: ${hello.outer})` : ""}`,
      };
    case "not-tls":
      return { why: `not TLS: ${hello.reason}` };
    case "incomplete":
      return { why: "ClientHello larger than the shield reads" };
  }
  try {
    // RFC 6066: a server name is a host name, never an address.
    if (canonicalHost(hello.name).ip) return { why: `an IP address as the server name (${hello.name})` };
  } catch (e) {
    if (e instanceof TargetError) return { why: `a server name the shield cannot read: ${e.reason}` };
    throw e;
  }
  return hello.name;
}
