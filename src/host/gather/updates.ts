import { ok, type Fact } from "../../facts/fact.js";
import {
  lastLogTimestamp,
  NEEDRESTART_CONF,
  NEEDRESTART_CONF_D,
  needrestartMode,
  UNATTENDED_LOG,
  type UpdatesFact,
} from "../../facts/updates.js";
import type { FactContext } from "../context.js";
import { isMissing } from "../errors.js";
import { gather } from "./guard.js";

const TIMER_LINKS = [
  "/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
  "/usr/lib/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
  "/lib/systemd/system/timers.target.wants/apt-daily-upgrade.timer",
];

async function readNeedrestartMode(ctx: FactContext): Promise<UpdatesFact["needrestartMode"]> {
  let parts: string[] = [];
  try {
    parts = (await ctx.host.readDir(NEEDRESTART_CONF_D))
      .filter((e) => e.type !== "dir" && e.name.endsWith(".conf"))
      .map((e) => `${NEEDRESTART_CONF_D}/${e.name}`)
      .sort();
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  // needrestart.conf loads the conf.d snippets at its end, so they override it.
  let mode: UpdatesFact["needrestartMode"];
  for (const p of [NEEDRESTART_CONF, ...parts]) {
    try {
      mode = needrestartMode(await ctx.host.readFile(p), p) ?? mode;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }
  return mode;
}

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
    const needrestart = await readNeedrestartMode(ctx);
    return ok({ lastRun, timerEnabled, now: Date.now(), needrestartMode: needrestart }, [
      UNATTENDED_LOG,
      ...TIMER_LINKS,
      NEEDRESTART_CONF,
    ]);
  });
}
