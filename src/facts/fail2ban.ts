import { entry, table } from "./record.js";

export const F2B_DIR = "/etc/fail2ban";
export const F2B_WANTS = "/etc/systemd/system/multi-user.target.wants/fail2ban.service";
export interface IniValue {
  value: string;
  source: string;
  line: number;
}

/** Sections of fail2ban's ini files merged in reading order: a later file's key replaces an earlier one. */
export type Ini = Record<string, Record<string, IniValue>>;

/**
 * Parse one file of fail2ban's configparser dialect: `[section]`, `key = value` or `key: value`,
 * indented continuation lines, `#`/`;` comment lines, and `;`/`#` comments after whitespace.
 */
export function parseIni(text: string, source: string, into: Ini = table()): Ini {
  let section: Record<string, IniValue> | undefined;
  let last: IniValue | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*[#;]/.test(raw) || !raw.trim()) {
      if (!raw.trim()) last = undefined;
      return;
    }
    if (/^\s/.test(raw) && last) {
      last.value += `\n${raw.trim().replace(/\s+[;#].*$/, "")}`;
      return;
    }
    const sec = /^\[([^\]]+)\]/.exec(raw);
    if (sec) {
      const name = sec[1]!.trim();
      section = entry(into, name) ?? (into[name] = table());
      last = undefined;
      return;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(raw);
    if (!kv || !section) {
      last = undefined;
      return;
    }
    last = { value: kv[2]!.replace(/\s+[;#].*$/, "").trim(), source, line: i + 1 };
    section[kv[1]!.trim().toLowerCase()] = last;
  });
  return into;
}

/** One jail option after `[DEFAULT]` inheritance and `%(name)s` interpolation. */
export interface JailOption {
  /** Interpolated value. */
  value: string;
  /** As written, before interpolation. */
  raw: string;
  source: string;
  line: number;
  /** "DEFAULT" when inherited. */
  section: string;
}

export function jailOption(ini: Ini, jail: string, key: string): JailOption | undefined {
  const lookup = (k: string): { v: IniValue; section: string } | undefined => {
    const own = entry(entry(ini, jail) ?? {}, k);
    if (own) return { v: own, section: jail };
    const d = entry(entry(ini, "DEFAULT") ?? {}, k);
    return d ? { v: d, section: "DEFAULT" } : undefined;
  };
  const hit = lookup(key);
  if (!hit) return undefined;
  const interpolate = (s: string, depth: number): string =>
    s.replace(/%\(([^)]+)\)s|%%/g, (m, name: string | undefined) => {
      if (m === "%%") return "%";
      if (name === "__name__") return jail;
      const ref = lookup(name!.toLowerCase().replace(/^known\//, ""));
      if (!ref || depth > 10) return m;
      return interpolate(ref.v.value, depth + 1);
    });
  return {
    value: interpolate(hit.v.value, 0),
    raw: hit.v.value,
    source: hit.v.source,
    line: hit.v.line,
    section: hit.section,
  };
}

const TIME_UNITS: Array<[RegExp, number]> = [
  [/^(?:y|yy|years?)$/, 365 * 86400],
  [/^(?:mo|months?)$/, 30 * 86400],
  [/^(?:w|ww|weeks?)$/, 7 * 86400],
  [/^(?:d|dd|days?)$/, 86400],
  [/^(?:h|hh|hours?)$/, 3600],
  [/^(?:m|mm|mi|min|mins|minutes?)$/, 60],
  [/^(?:s|ss|sec|secs|seconds?)?$/, 1],
];

/** fail2ban's time syntax: `600`, `10m`, `1h 30m`, `1d12h`, `-1` (forever). Null when unreadable. */
export function parseFail2banTime(s: string): number | null {
  const text = s.trim().toLowerCase();
  if (!text) return null;
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)/.exec(rest);
    if (!m || m[0].length === 0) return null;
    const unit = TIME_UNITS.find(([re]) => re.test(m[2]!));
    if (!unit) return null;
    total += Number(m[1]) * unit[1];
    rest = rest.slice(m[0].length).trimStart();
  }
  return total;
}

export function parseServices(text: string): Record<string, number> {
  const out = table<number>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9_.+-]+)\s+(\d+)\/tcp\b([^#]*)/.exec(line);
    if (!m) continue;
    const port = Number(m[2]);
    for (const name of [m[1]!, ...m[3]!.trim().split(/\s+/).filter(Boolean)]) out[name] ??= port;
  }
  return out;
}

export interface LogFile {
  pattern: string;
  found: string[];
}

export interface Fail2banFact {
  files: string[];
  ini: Ini;
  /** The wants link `systemctl enable` makes, and the live answer when it could be asked. */
  wantsLink: boolean;
  liveEnabled?: string;
  liveActive?: string;
  journald: boolean;
  services: Record<string, number>;
  /** The sshd jail's logpath entries and which files they match on this system. */
  sshdLogs: LogFile[];
}
