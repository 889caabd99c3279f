/**
 * One host during a fleet run: its shell, its clawguard (prepared on first use), and what went
 * wrong as data. An expected failure (a ClawguardError: unreachable, a refused key, a remote
 * error) becomes the host's error row and the other hosts go on; anything else is a bug and
 * stops the run.
 */
import { ClawguardError, type ErrorCode } from "../errors.js";
import type { Bundle } from "./remote/bundle.js";
import { RemoteClawguard, type RemoteInfo } from "./remote/clawguard.js";
import type { Connector, RemoteShell } from "./ssh/session.js";
import type { Target } from "./target.js";

export type HostStatus = "ok" | "unreachable" | "error";

export interface HostError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

/** The host's error as data, or the error itself thrown again when it is a bug. */
export function hostError(e: unknown): HostError {
  if (!(e instanceof ClawguardError)) throw e;
  return { code: e.code, message: e.reason, ...(e.hint !== undefined ? { hint: e.hint } : {}) };
}

/** No answer at all is "unreachable"; an answer fleet cannot use is "error". */
export function statusOf(err: HostError): Exclude<HostStatus, "ok"> {
  return err.code === "CG_SSH_UNREACHABLE" || err.code === "CG_HOST_TIMEOUT" ? "unreachable" : "error";
}

export interface HostContext {
  connector: Connector;
  /** This clawguard's version. */
  version: string;
  bundle: () => Promise<Bundle>;
  forceCopy: boolean;
  /** Each step on a host (connecting and copying, then each command) gets this long. */
  timeoutMs: number;
}

export class HostSession {
  private readonly shell: RemoteShell;
  private prepared: Promise<RemoteClawguard> | undefined;

  constructor(
    readonly target: Target,
    private readonly ctx: HostContext,
  ) {
    this.shell = ctx.connector.shell(target);
  }

  clawguard(): Promise<RemoteClawguard> {
    if (this.target.problem !== undefined)
      return Promise.reject(new ClawguardError("CG_CONFIG_INVALID", this.target.problem));
    this.prepared ??= RemoteClawguard.prepare(this.shell, {
      version: this.ctx.version,
      bundle: this.ctx.bundle,
      forceCopy: this.ctx.forceCopy,
      timeoutMs: () => this.ctx.timeoutMs,
    });
    return this.prepared;
  }

  /** How clawguard runs there, once it has been prepared. */
  async info(): Promise<RemoteInfo | undefined> {
    return this.prepared?.then((c) => c.info).catch(() => undefined);
  }

  async close(): Promise<void> {
    const c = await this.prepared?.catch(() => undefined);
    await c?.close();
  }
}

/** Run `fn` over `items`, at most `limit` at a time, results in the order of `items`. */
export async function forEachLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
