import { ok, type Fact } from "../../facts/fact.js";
import {
  LOCKDOWN_FILE,
  LOCKDOWN_TABLE,
  LOCKDOWN_UNIT,
  summarizeNft,
  type LockdownState,
} from "../../facts/lockdown.js";
import type { FactContext } from "../context.js";
import { HostError, isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

const UNIT_DIRS = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

async function readLive(ctx: FactContext): Promise<LockdownState["live"]> {
  const args = ["list", "table", ...LOCKDOWN_TABLE.split(" ")];
  const command = `nft ${args.join(" ")}`;
  try {
    const r = await ctx.host.run("nft", args, { timeoutMs: 10_000 });
    if (r.code === 0) return { table: summarizeNft(r.stdout), command };
    if (/No such file or directory|does not exist/i.test(r.stderr))
      return { absent: r.stderr.trim().split("\n")[0]!, command };
    if (/Operation not permitted|Permission denied/i.test(r.stderr))
      return { skip: `${command} needs root (CAP_NET_ADMIN)` };
    return {
      problem: { kind: "io", source: command, message: `exit ${r.code}: ${r.stderr.trim().slice(0, 200)}` },
    };
  } catch (err) {
    if (err instanceof HostError && (err.problem.kind === "unavailable" || err.problem.kind === "missing"))
      return { skip: err.problem.message };
    return { problem: toProblem(command, err) };
  }
}

export function gatherLockdown(ctx: FactContext): Promise<Fact<LockdownState>> {
  return gather(LOCKDOWN_FILE, async () => {
    const state: LockdownState = { live: { skip: "not asked" } };
    const sources: string[] = [];
    try {
      state.file = { path: LOCKDOWN_FILE, ...summarizeNft(await ctx.host.readFile(LOCKDOWN_FILE)) };
      sources.push(LOCKDOWN_FILE);
    } catch (err) {
      if (!isMissing(err)) state.fileProblem = toProblem(LOCKDOWN_FILE, err);
    }
    for (const dir of UNIT_DIRS) {
      const p = `${dir}/${LOCKDOWN_UNIT}`;
      if ((await ctx.host.stat(p))?.type !== "file") continue; // absent, or masked to /dev/null
      let enabledBy: string | undefined;
      for (const t of ["multi-user.target", "sysinit.target", "network-pre.target", "default.target"]) {
        const link = `/etc/systemd/system/${t}.wants/${LOCKDOWN_UNIT}`;
        if (await ctx.host.lstat(link)) {
          enabledBy = link;
          break;
        }
      }
      state.unit = { path: p, enabled: enabledBy !== undefined, enabledBy };
      sources.push(p);
      break;
    }
    state.live = await readLive(ctx);
    return ok(state, sources);
  });
}
