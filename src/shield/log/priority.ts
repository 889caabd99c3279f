/**
 * The log writer thread's CPU priority. On a small server the writer's commits (a few ms of CPU
 * each, most of it in WAL writes) compete for the cores with the proxy's own thread, and a
 * request that arrives while both cores are taken waits for one: measured at 1,000 requests per
 * second, a writer at the proxy's priority put the proxy's p99 at about 2 ms, a writer at nice 19
 * at about 1.2 ms, and no commits at all at about 1 ms. So the writer runs in the background
 * while it keeps up, and at the proxy's priority as soon as records pile up, so that a busy
 * proxy can never starve it into dropping records.
 *
 * Going back to the proxy's priority lowers a nice value, which Linux allows only with
 * CAP_SYS_NICE or a high enough RLIMIT_NICE. Without either, the writer is never moved to the
 * background at all: it could not be brought back.
 */
import { readFileSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** The nice value of a writer that keeps up. */
export const BACKGROUND_NICE = 19;
const CAP_SYS_NICE = 23n;

/** The calling thread's kernel id, or null where there is no /proc (not Linux). */
export function threadId(): number | null {
  const tid = Number(readProc("/proc/thread-self/stat").split(" ", 1)[0]);
  return Number.isInteger(tid) && tid > 0 ? tid : null;
}

/** A /proc file's text, or "" where it cannot be read. */
function readProc(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/**
 * Whether this process may set a thread's nice value down to `nice`: with CAP_SYS_NICE, or an
 * RLIMIT_NICE (soft) of at least 20 - nice. `status` and `limits` are /proc/self/status and
 * /proc/self/limits.
 */
export function mayLowerNiceTo(
  nice: number,
  status = readProc("/proc/self/status"),
  limits = readProc("/proc/self/limits"),
): boolean {
  const cap = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  if (cap && ((BigInt(`0x${cap[1]}`) >> CAP_SYS_NICE) & 1n) === 1n) return true;
  const limit = /^Max nice priority\s+(\S+)/m.exec(limits);
  if (!limit) return false;
  return limit[1] === "unlimited" || Number(limit[1]) >= 20 - nice;
}

/**
 * Moves one thread between its own nice value and BACKGROUND_NICE with the backlog it reports:
 * background once at most `low` records wait, its own priority again above `high`. Never gives
 * up priority it could not take back. Drop it when the thread exits: its id may be reused.
 */
export class WriterPriority {
  private background = false;
  private enabled: boolean;

  constructor(
    readonly tid: number,
    private readonly low: number,
    private readonly high: number,
    /** The thread's nice value when it started: the one it returns to. */
    readonly normal: number = getPriority(tid),
    permitted: boolean = mayLowerNiceTo(normal),
  ) {
    this.enabled = permitted && normal < BACKGROUND_NICE;
  }

  /** Whether this moves the thread at all (it may, and was not refused). */
  get managed(): boolean {
    return this.enabled;
  }

  /** Whether the thread runs at BACKGROUND_NICE now. */
  get inBackground(): boolean {
    return this.background;
  }

  /** Adjust to `backlog`, the records appended and not yet committed. */
  update(backlog: number): void {
    if (!this.enabled) return;
    if (!this.background && backlog <= this.low) this.set(true);
    else if (this.background && backlog > this.high) this.set(false);
  }

  private set(background: boolean): void {
    try {
      setPriority(this.tid, background ? BACKGROUND_NICE : this.normal);
      this.background = background;
    } catch {
      // Refused after all: leave the thread alone from now on.
      this.enabled = false;
    }
  }
}
