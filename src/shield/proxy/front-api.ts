/**
 * What the shield's data path needs of the HTTP/1.1 server that reads agents' requests, so that
 * either server can stand under it: the shield's own (front.ts) or one on Node's `http` module
 * (node-front.ts). The proxy sees requests, tunnels and requests that could not be read; never a
 * parser, a stream or a Node response object.
 */
import type net from "node:net";

export interface FrontOptions {
  /** Largest request head (request line and headers, final CRLF included). */
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  /** Read and write buffer size of each connection's socket. */
  highWaterMark: number;
}

export interface FrontHandlers {
  /** A plain request: answer it through the request's response methods. */
  request(req: FrontRequest): void;
  /** CONNECT, or a request asking to upgrade: the socket is the handler's from now on. */
  tunnel(req: FrontRequest, socket: net.Socket, head: Buffer, kind: "connect" | "upgrade"): void;
  /** A request that could not be read; the socket is the handler's to answer and close. */
  clientError(err: RequestError, socket: net.Socket): void;
}

/** A server of agents' connections: it owns the listening socket. */
export interface Front {
  readonly server: net.Server;
  /** Close kept-alive connections waiting for a request; the others close after their response. */
  closeIdle(): void;
}

/** What a plain request's owner hears about its response and the connection under it. */
export interface ResponseWatcher {
  /** The socket drained after `write` returned false. */
  onWritable(): void;
  /** The response was completed (`end`) or the connection closed first; called once. */
  onClose(): void;
}

/**
 * One plain request and its response, or the head of a tunnel. The body is read only once the
 * owner calls `takeBody`; the response is written with `writeHead`, `write` and `end`, or all
 * at once with `reply`.
 */
export interface FrontRequest {
  readonly method: string;
  readonly url: string;
  /** Header list as received: name, value, name, value, ... */
  readonly rawHeaders: string[];
  readonly kind: "plain" | "connect" | "upgrade";
  /** Why the body's end cannot be known (or its framing is refused), or null. */
  readonly ambiguous: string | null;
  readonly socket: net.Socket;
  /** Whether a body follows the head. */
  readonly hasBody: boolean;
  readonly destroyed: boolean;
  /** Why the request body could not be read to its end (the log's reason), or null. */
  failure: string | null;
  readonly headersSent: boolean;
  /** `end` was called: the whole response went to the socket. */
  readonly complete: boolean;
  /** The connection may serve another request after this one. */
  keepAlive: boolean;
  /** Be told of drains and of the response's end. */
  watch(watcher: ResponseWatcher): void;
  /** Read the body: pieces to `onData` (false: stop until `resumeBody`), then `onEnd`. */
  takeBody(onData: (chunk: Buffer) => boolean, onEnd: () => void): void;
  resumeBody(): void;
  /** Relay a 100 Continue; never to an HTTP/1.0 client, which cannot read one (RFC 9110 §15.2). */
  writeContinue(): void;
  /**
   * The response head. Its framing follows the headers: their Content-Length if given, none
   * where the status or method has no body, else chunked (HTTP/1.1) or until close (HTTP/1.0).
   */
  writeHead(status: number, reason: string, headers: readonly string[]): void;
  /** A piece of the response body; false when the socket is full (`onWritable` follows). */
  write(chunk: Buffer): boolean;
  /** The response is complete. */
  end(): void;
  /** A whole plain-text response: `extra` is a header list (name, value, ...). */
  reply(status: number, text: string, extra?: readonly string[]): void;
  /** Cut the connection. */
  destroy(): void;
}

/** A request that cannot be served, with the status that says so. */
export class RequestError extends Error {
  constructor(
    readonly status: 400 | 408 | 417 | 431,
    message: string,
  ) {
    super(message);
    this.name = "RequestError";
  }
}

export const STATUS_TEXT = {
  400: "Bad Request",
  408: "Request Timeout",
  417: "Expectation Failed",
  431: "Request Header Fields Too Large",
} as const;

/** A whole plain-text response as header list and body, as both servers write `reply`. */
export function plainReply(
  text: string,
  extra: readonly string[],
): { headers: readonly string[]; body: Buffer } {
  const body = Buffer.from(`${text}\n`);
  return {
    headers: [...extra, "Content-Type", "text/plain", "Content-Length", String(body.length)],
    body,
  };
}
