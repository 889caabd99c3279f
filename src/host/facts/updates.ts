import type { FactContext } from "../context.js";
import { HostError } from "../errors.js";
import { gather, ok, type Fact } from "../fact.js";

export const UNATTENDED_LOG = "/var/log/unattended-upgrades/unattended-upgrades.log";
const TIMER_LINKS = [
  "/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
  "/usr/lib/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
  "/lib/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
];

export interface UpdatesFact {
  /** Epoch ms of the last line of unattended-upgrades' log, with the line; undefined when no log. */
  lastRun?: { at: number; line: string };
  /** apt-daily-upgrade.timer is pulled in at boot. */
  timerEnabled: boolean;
  /** When the facts were read, so the check stays a pure function of them. */
  now: number;
}

/** The last timestamp ("2026-11-25 06:12:01,123 INFO ...") of unattended-upgrades' log. */
export function lastLogTimestamp(text: string): { at: number; line: string } | undefined {
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})/.exec(lines[i]!);
    if (m) return { at: Date.parse(`${m[1]}T${m[2]}Z`), line: lines[i]!.trim() };
  }
  return undefined;
}

export function gatherUpdates(ctx: FactContext): Promise<Fact<UpdatesFact>> {
  return gather(UNATTENDED_LOG, async () => {
    let lastRun: UpdatesFact["lastRun"];
    try {
      lastRun = lastLogTimestamp(await ctx.host.readFile(UNATTENDED_LOG));
    } catch (err) {
      if (!(err instanceof HostError && err.problem.kind === "missing")) throw err;
    }
    let timerEnabled = false;
    for (const l of TIMER_LINKS) if (await ctx.host.lstat(l)) timerEnabled = true;
    return ok({ lastRun, timerEnabled, now: Date.now() }, [UNATTENDED_LOG, ...TIMER_LINKS]);
  });
}
