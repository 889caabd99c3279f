import { ok, type Fact } from "../../facts/fact.js";
import { lastLogTimestamp, UNATTENDED_LOG, type UpdatesFact } from "../../facts/updates.js";
import type { FactContext } from "../context.js";
import { isMissing } from "../errors.js";
import { gather } from "./guard.js";

const TIMER_LINKS = [
  "/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
  "/usr/lib/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
  "/lib/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
];

export function gatherUpdates(ctx: FactContext): Promise<Fact<UpdatesFact>> {
  return gather(UNATTENDED_LOG, async () => {
    let lastRun: UpdatesFact["lastRun"];
    try {
      lastRun = lastLogTimestamp(await ctx.host.readFile(UNATTENDED_LOG));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    let timerEnabled = false;
    for (const l of TIMER_LINKS) if (await ctx.host.lstat(l)) timerEnabled = true;
    return ok({ lastRun, timerEnabled, now: Date.now() }, [UNATTENDED_LOG, ...TIMER_LINKS]);
  });
}
