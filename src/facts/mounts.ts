import { MalformedError, type Fact } from "./fact.js";

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

/** Whether the live mount table could be read (a fact with /proc missing still has fstab). */
export function liveMountsRead(fact: Fact<TmpFact>): boolean {
  return fact.status === "ok" && fact.sources.includes("/proc/self/mounts");
}
