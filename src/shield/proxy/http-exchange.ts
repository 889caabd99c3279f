/**
 * A plain HTTP request once admitted: its body to the destination and the response back, each
 * with backpressure, and its log record once the agent's response is done.
 */
import { DialError } from "../net/dial.js";
import type { Outcome } from "../policy/outcome.js";
import type { FrontRequest, ResponseWatcher } from "./front-api.js";
import { downstreamResponseHeaders } from "./headers.js";
import { overrunOutcome, type Meter } from "./metering.js";
import type { RequestLogger } from "./request-log.js";
import type { Exchange, UpstreamHandler } from "./upstream.js";

/**
 * One plain HTTP request relayed: the request body to the destination and the response back,
 * each with backpressure, and the request's log record once the client's response is done.
 */
export class HttpExchange implements UpstreamHandler, ResponseWatcher {
  upstream: Exchange | null = null;
  release: (() => void) | null = null;
  private down = 0;
  private failure: string | null = null;

  /** `up` starts at the head's bytes: budgets count them as upload, and so do the log and `agents`. */
  constructor(
    private readonly req: FrontRequest,
    private readonly log: RequestLogger,
    private outcome: Outcome,
    private up: number,
    private readonly masked: ReadonlySet<string>,
    private readonly meter: Meter,
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
