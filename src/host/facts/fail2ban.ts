import type { FactContext } from "../context.js";
import { HostError, type Problem } from "../errors.js";
import { gather, ok, skipped, toProblem, type Fact } from "../fact.js";
import type { Host } from "../host.js";
import { expandGlob } from "./sshd.js";

export const F2B_DIR = "/etc/fail2ban";
export const F2B_WANTS = "/etc/systemd/system/multi-user.target.wants/fail2ban.service";
const JOURNALD = ["/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald"];

export interface IniValue {
  value: string;
  source: string;
  line: number;
}

/** Sections of fail2ban's ini files merged in reading order: a later file's key replaces an earlier one. */
export type Ini = Map<string, Map<string, IniValue>>;

/**
 * Parse one file of fail2ban's configparser dialect: `[section]`, `key = value` or `key: value`,
 * indented continuation lines, `#`/`;` comment lines, and `;`/`#` comments after whitespace.
 */
export function parseIni(text: string, source: string, into: Ini = new Map()): Ini {
  let section: Map<string, IniValue> | undefined;
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
      section = into.get(name) ?? new Map();
      into.set(name, section);
      last = undefined;
      return;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(raw);
    if (!kv || !section) {
      last = undefined;
      return;
    }
    last = { value: kv[2]!.replace(/\s+[;#].*$/, "").trim(), source, line: i + 1 };
    section.set(kv[1]!.trim().toLowerCase(), last);
  });
  return into;
}

async function readOptional(host: Host, path: string): Promise<string | null> {
  try {
    return await host.readFile(path);
  } catch (err) {
    if (err instanceof HostError && err.problem.kind === "missing") return null;
    throw err;
  }
}

/** Read a file and its `[INCLUDES] before/after` files around it, in fail2ban's order. */
async function readWithIncludes(
  host: Host,
  path: string,
  ini: Ini,
  files: string[],
  depth = 0,
): Promise<void> {
  if (depth > 10) return;
  const text = await readOptional(host, path);
  if (text === null) return;
  const own = parseIni(text, path);
  const inc = own.get("INCLUDES");
  const dir = path.slice(0, path.lastIndexOf("/"));
  const list = (k: string) =>
    (inc?.get(k)?.value ?? "")
      .split(/\s+/)
      .filter(Boolean)
      .map((p) => (p.startsWith("/") ? p : `${dir}/${p}`));
  for (const p of list("before")) await readWithIncludes(host, p, ini, files, depth + 1);
  parseIni(text, path, ini);
  files.push(path);
  for (const p of list("after")) await readWithIncludes(host, p, ini, files, depth + 1);
}

/** fail2ban's reading order for jails: jail.conf < jail.d/*.conf < jail.local < jail.d/*.local. */
export async function readJailConfig(host: Host, dir = F2B_DIR): Promise<{ ini: Ini; files: string[] }> {
  const ini: Ini = new Map();
  const files: string[] = [];
  const order = [
    [`${dir}/jail.conf`],
    await expandGlob(host, `${dir}/jail.d/*.conf`),
    [`${dir}/jail.local`],
    await expandGlob(host, `${dir}/jail.d/*.local`),
  ].flat();
  for (const p of order) await readWithIncludes(host, p, ini, files);
  return { ini, files };
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
    const own = ini.get(jail)?.get(k);
    if (own) return { v: own, section: jail };
    const d = ini.get("DEFAULT")?.get(k);
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

export function parseServices(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9_.+-]+)\s+(\d+)\/tcp\b([^#]*)/.exec(line);
    if (!m) continue;
    const port = Number(m[2]);
    if (!out.has(m[1]!)) out.set(m[1]!, port);
    for (const alias of m[3]!.trim().split(/\s+/).filter(Boolean)) if (!out.has(alias)) out.set(alias, port);
  }
  return out;
}

// Used when /etc/services is missing (a minimal image); the names that matter for an sshd jail.
const WELL_KNOWN = new Map([
  ["ssh", 22],
  ["http", 80],
  ["https", 443],
]);

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
  services: Map<string, number>;
  /** The sshd jail's logpath entries and which files they match on this system. */
  sshdLogs: LogFile[];
}

async function liveState(host: Host, verb: string): Promise<string | undefined> {
  if (host.root !== "/") return undefined;
  try {
    const r = await host.run("systemctl", [verb, "fail2ban.service"]);
    return r.stdout.trim().split("\n")[0] || undefined;
  } catch (err) {
    if (err instanceof HostError) return undefined;
    throw err;
  }
}

/** fail2ban's merged jail configuration and what its sshd jail needs from this system. */
export function gatherFail2ban(ctx: FactContext): Promise<Fact<Fail2banFact>> {
  return gather(`${F2B_DIR}/jail.conf`, async () => {
    const h = ctx.host;
    if (!(await h.stat(F2B_DIR))) return skipped(`${F2B_DIR} does not exist`);
    const problems: Problem[] = [];
    const { ini, files } = await readJailConfig(h);
    let services = WELL_KNOWN;
    try {
      const text = await readOptional(h, "/etc/services");
      if (text !== null) services = new Map([...WELL_KNOWN, ...parseServices(text)]);
    } catch (err) {
      problems.push(toProblem("/etc/services", err));
    }
    const sshdLogs: LogFile[] = [];
    const logpath = jailOption(ini, "sshd", "logpath");
    for (const line of (logpath?.value ?? "").split("\n")) {
      const pattern = line.trim().split(/\s+/)[0];
      if (!pattern) continue;
      sshdLogs.push({ pattern, found: await expandGlob(h, pattern).then((ps) => filterExisting(h, ps)) });
    }
    let journald = false;
    for (const j of JOURNALD) if (await h.stat(j)) journald = true;
    const [liveEnabled, liveActive] = await Promise.all([
      liveState(h, "is-enabled"),
      liveState(h, "is-active"),
    ]);
    return ok(
      {
        files,
        ini,
        wantsLink: (await h.lstat(F2B_WANTS)) !== null,
        liveEnabled,
        liveActive,
        journald,
        services,
        sshdLogs,
      },
      files,
      problems,
    );
  });
}

async function filterExisting(host: Host, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) if ((await host.stat(p))?.type === "file") out.push(p);
  return out;
}
