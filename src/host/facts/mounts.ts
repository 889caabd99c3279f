import type { FactContext } from "../context.js";
import { HostError, type Problem } from "../errors.js";
import { gather, MalformedError, ok, toProblem, type Fact } from "../fact.js";
import { lastAssignment, readScopedUnit } from "./units.js";

export interface MountEntry {
  device: string;
  mountpoint: string;
  fstype: string;
  options: string[];
  source: string;
  line: number;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse /proc/self/mounts or /etc/fstab (same six-field shape). */
export function parseMountTable(text: string, source: string): MountEntry[] {
  const out: MountEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const f = line.split(/\s+/);
    if (f.length < 4)
      throw new MalformedError(
        `expected "device mountpoint type options", got "${line.slice(0, 80)}"`,
        i + 1,
      );
    out.push({
      device: unescapeMount(f[0]!),
      mountpoint: unescapeMount(f[1]!),
      fstype: f[2]!,
      options: f[3]!.split(","),
      source,
      line: i + 1,
    });
  });
  return out;
}

export interface TmpMountUnit {
  path: string;
  options: string[];
  what?: string;
  /** Pulled in at boot (a local-fs.target.wants link, or shipped enabled by the distribution). */
  enabled: boolean;
  sources: string[];
}

export interface TmpFact {
  /** The live mount of /tmp (last one wins), or undefined when /tmp is on the root filesystem. */
  live?: MountEntry;
  /** An /etc/fstab entry for /tmp. */
  fstab?: MountEntry;
  tmpMount?: TmpMountUnit;
}

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
      if (!(err instanceof HostError && err.problem.kind === "missing"))
        problems.push(toProblem("/etc/fstab", err));
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

/** Whether the live mount table could be read (a fact with /proc missing still has fstab). */
export function liveMountsRead(fact: Fact<TmpFact>): boolean {
  return fact.status === "ok" && fact.sources.includes("/proc/self/mounts");
}
