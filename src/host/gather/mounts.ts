import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { parseMountTable, type TmpFact, type TmpMountUnit } from "../../facts/mounts.js";
import { lastAssignment } from "../../facts/units.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";
import { readScopedUnit } from "./units.js";

const TMP_MOUNT_PATHS = [
  "/etc/systemd/system/tmp.mount",
  "/usr/lib/systemd/system/tmp.mount",
  "/lib/systemd/system/tmp.mount",
];
const WANTS = [
  "/etc/systemd/system/local-fs.target.wants/tmp.mount",
  "/usr/lib/systemd/system/local-fs.target.wants/tmp.mount",
  "/lib/systemd/system/local-fs.target.wants/tmp.mount",
];

async function readTmpMountUnit(ctx: FactContext): Promise<TmpMountUnit | undefined> {
  for (const path of TMP_MOUNT_PATHS) {
    const read = await readScopedUnit(ctx, path, "system");
    if (!read) continue;
    if (
      (await ctx.host.lstat(path))?.type === "symlink" &&
      (await ctx.host.resolve(path)).endsWith("/dev/null")
    ) {
      return { path, options: [], enabled: false, sources: [path] }; // masked
    }
    let enabled = false;
    for (const w of WANTS) if (await ctx.host.lstat(w)) enabled = true;
    const opts = lastAssignment(read.unit, "Mount", "Options")?.value;
    return {
      path,
      options: opts ? opts.split(",").map((o) => o.trim()) : [],
      what: lastAssignment(read.unit, "Mount", "What")?.value,
      enabled,
      sources: read.sources,
    };
  }
  return undefined;
}

export function gatherTmp(ctx: FactContext): Promise<Fact<TmpFact>> {
  return gather("/proc/self/mounts", async () => {
    const problems: Problem[] = [];
    const sources: string[] = [];
    const fact: TmpFact = {};
    let liveRead = false;
    try {
      const mounts = parseMountTable(await ctx.host.readFile("/proc/self/mounts"), "/proc/self/mounts");
      fact.live = mounts.filter((m) => m.mountpoint === "/tmp").pop();
      sources.push("/proc/self/mounts");
      liveRead = true;
    } catch (err) {
      problems.push(toProblem("/proc/self/mounts", err));
    }
    try {
      const fstab = parseMountTable(await ctx.host.readFile("/etc/fstab"), "/etc/fstab");
      fact.fstab = fstab.filter((m) => m.mountpoint === "/tmp" || m.mountpoint === "/tmp/").pop();
      sources.push("/etc/fstab");
    } catch (err) {
      if (!isMissing(err)) problems.push(toProblem("/etc/fstab", err));
    }
    try {
      fact.tmpMount = await readTmpMountUnit(ctx);
      if (fact.tmpMount) sources.push(...fact.tmpMount.sources);
    } catch (err) {
      problems.push(toProblem("tmp.mount", err));
    }
    if (!liveRead && sources.length === 0) return { status: "error", problems };
    return ok(fact, sources, problems);
  });
}
