import { lastAssignment, type Assignment, type LocatedUnit } from "./units.js";

export const COREDUMP_CONF = "/etc/systemd/coredump.conf";
/** Drop-in directories of coredump.conf, highest precedence first (a name in an earlier one masks later ones). */
export const COREDUMP_DROPIN_DIRS = [
  "/etc/systemd/coredump.conf.d",
  "/run/systemd/coredump.conf.d",
  "/usr/local/lib/systemd/coredump.conf.d",
  "/usr/lib/systemd/coredump.conf.d",
];

/** systemd-coredump's settings: coredump.conf, then its drop-ins in name order, the last value winning. */
export interface CoredumpFact {
  config: LocatedUnit;
  files: string[];
  /** `core` lines of pam_limits' files (limits.conf, then limits.d in name order): login sessions' limit. */
  limits: CoreLimit[];
}

export const LIMITS_CONF = "/etc/security/limits.conf";
export const LIMITS_D = "/etc/security/limits.d";

export interface CoreLimit {
  domain: string;
  /** soft, hard, or `-` for both. */
  type: string;
  value: string;
  source: string;
  line: number;
}

/** The `core` items of a limits.conf file: `<domain> <type> core <value>`. */
export function parseCoreLimits(text: string, source: string): CoreLimit[] {
  const out: CoreLimit[] = [];
  text.split("\n").forEach((raw, i) => {
    const f = raw.replace(/#.*/, "").trim().split(/\s+/);
    if (f.length >= 4 && f[2] === "core")
      out.push({ domain: f[0]!, type: f[1]!, value: f[3]!, source, line: i + 1 });
  });
  return out;
}

/** The hard core limit every login gets (`*`), the last line that sets it winning. */
export function hardCoreLimit(f: CoredumpFact): CoreLimit | undefined {
  return f.limits.filter((l) => l.domain === "*" && (l.type === "hard" || l.type === "-")).at(-1);
}

export function coredumpSetting(f: CoredumpFact, key: "Storage" | "ProcessSizeMax"): Assignment | undefined {
  return lastAssignment(f.config, "Coredump", key);
}
