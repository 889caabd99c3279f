import { MalformedError } from "./fact.js";
import type { MountEntry } from "./mounts.js";
import { entry, table } from "./record.js";

/**
 * Where systemd-sysctl and `sysctl --system` read drop-ins, highest precedence first: a file
 * name in an earlier directory masks the same name in a later one.
 */
export const SYSCTL_DIRS = [
  "/etc/sysctl.d",
  "/run/sysctl.d",
  "/usr/local/lib/sysctl.d",
  "/usr/lib/sysctl.d",
  "/lib/sysctl.d",
];
export const SYSCTL_CONF = "/etc/sysctl.conf";

/** One assignment in a sysctl drop-in; `key` may hold globs (`net.ipv4.conf.*.rp_filter`). */
export interface SysctlAssignment {
  key: string;
  value: string;
  source: string;
  line: number;
}

export interface SysctlFact {
  /** Every assignment in the order they are applied: a later one wins. */
  assignments: SysctlAssignment[];
  files: string[];
  /** Live values from /proc/sys of the keys the checks read; undefined when this is not the running system. */
  live?: Record<string, string>;
  /** Keys whose /proc/sys entry is mounted read-only: in a container, the host's kernel decides them. */
  readOnly: string[];
}

/** `a/b/c` and `a.b.c` name the same key; sysctl.d(5) takes either. */
export function normalizeKey(k: string): string {
  return k.trim().replace(/^-/, "").replaceAll("/", ".");
}

/** Parse one sysctl.d file: `key = value` lines, `#` and `;` comments, a leading `-` meaning "ignore errors". */
export function parseSysctlConf(text: string, source: string): SysctlAssignment[] {
  const out: SysctlAssignment[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) return;
    const eq = line.indexOf("=");
    if (eq < 0) throw new MalformedError(`expected "key = value", found "${line}"`, i + 1);
    out.push({ key: normalizeKey(line.slice(0, eq)), value: line.slice(eq + 1).trim(), source, line: i + 1 });
  });
  return out;
}

function globMatches(pattern: string, key: string): boolean {
  if (!/[*?[]/.test(pattern)) return pattern === key;
  const re = pattern
    .replace(/[.+^${}()|\\]/g, "\\$&")
    .replaceAll("*", "[^.]*")
    .replaceAll("?", "[^.]");
  return new RegExp(`^${re}$`).test(key);
}

/** The value the drop-ins give `key` at boot (the last assignment that names or matches it). */
export function persistentValue(
  f: Pick<SysctlFact, "assignments">,
  key: string,
): SysctlAssignment | undefined {
  let found: SysctlAssignment | undefined;
  for (const a of f.assignments) if (globMatches(a.key, key)) found = a;
  return found;
}

export function liveValue(f: Pick<SysctlFact, "live">, key: string): string | undefined {
  return f.live ? entry(f.live, key) : undefined;
}

/** The /proc/sys path of a key. */
export function procPath(key: string): string {
  return `/proc/sys/${key.replaceAll(".", "/")}`;
}

/** Keys whose /proc/sys file sits under a read-only mount (the innermost mount decides). */
export function readOnlyKeys(mounts: MountEntry[], keys: readonly string[]): string[] {
  return keys.filter((k) => {
    const p = procPath(k);
    const covering = mounts
      .filter((m) => p === m.mountpoint || p.startsWith(m.mountpoint.replace(/\/$/, "") + "/"))
      .sort((a, b) => b.mountpoint.length - a.mountpoint.length)[0];
    return covering?.options.includes("ro") ?? false;
  });
}

export function liveTable(): Record<string, string> {
  return table<string>();
}

/** A sysctl that hardens the kernel or the network stack and breaks nothing an agent does. */
export interface HardenedSysctl {
  key: string;
  /** The value harden writes. */
  value: string;
  /** Values that are as safe (kptr_restrict 1 hides pointers from everyone but root too). */
  accept: string[];
}

const v = (key: string, value: string, ...also: string[]): HardenedSysctl => ({
  key,
  value,
  accept: [value, ...also],
});

/** Every hardened sysctl, by the finding that judges it. */
export const HARDENED_SYSCTLS = {
  pointer_leaks: [v("kernel.kptr_restrict", "2", "1"), v("kernel.dmesg_restrict", "1")],
  core_dumps: [v("fs.suid_dumpable", "0")],
  rp_filter: [
    v("net.ipv4.conf.all.rp_filter", "1"),
    v("net.ipv4.conf.default.rp_filter", "1"),
    v("net.ipv4.conf.all.log_martians", "1"),
    v("net.ipv4.conf.default.log_martians", "1"),
  ],
  icmp_redirects: [
    v("net.ipv4.conf.all.accept_redirects", "0"),
    v("net.ipv4.conf.default.accept_redirects", "0"),
    v("net.ipv4.conf.all.send_redirects", "0"),
    v("net.ipv4.conf.default.send_redirects", "0"),
    v("net.ipv6.conf.all.accept_redirects", "0"),
    v("net.ipv6.conf.default.accept_redirects", "0"),
  ],
  source_routes: [
    v("net.ipv4.conf.all.accept_source_route", "0"),
    v("net.ipv4.conf.default.accept_source_route", "0"),
    v("net.ipv6.conf.all.accept_source_route", "0"),
    v("net.ipv6.conf.default.accept_source_route", "0"),
  ],
  syncookies: [v("net.ipv4.tcp_syncookies", "1")],
} satisfies Record<string, HardenedSysctl[]>;

export type SysctlGroup = keyof typeof HARDENED_SYSCTLS;

export const HARDENED_KEYS: string[] = Object.values(HARDENED_SYSCTLS).flatMap((g) => g.map((s) => s.key));
