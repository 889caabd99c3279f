import type { RevocationFact } from "./krl.js";
import type { Problem } from "./fact.js";
import { entry, table } from "./record.js";

export const SSHD_CONFIG = "/etc/ssh/sshd_config";

/** One effective sshd setting and where it came from. */
export interface SshdSetting {
  value: string;
  /** `sshd -T`, or the config file that set it; "default" for OpenSSH's built-in value. */
  source: string;
  line?: number;
}

/** A setting inside a `Match` block: it applies only to the connections the block matches. */
export interface MatchOverride {
  criteria: string;
  key: string;
  value: string;
  source: string;
  line: number;
}

/** Effective settings by lowercased keyword: the first value wins for single-valued keywords; accumulating ones keep every value. */
export type SshdSettings = Record<string, SshdSetting[]>;

export interface SshdConfigParse {
  settings: SshdSettings;
  matches: MatchOverride[];
  files: string[];
  problems: Problem[];
}

/** Keywords whose every occurrence counts; for all others sshd keeps the first one. */
const ACCUMULATE = new Set([
  "port",
  "listenaddress",
  "hostkey",
  "include",
  "acceptenv",
  "subsystem",
  "allowusers",
  "allowgroups",
]);
const ALIASES: Record<string, string> = {
  challengeresponseauthentication: "kbdinteractiveauthentication",
};

/** OpenSSH 9.x compiled-in defaults for the keywords the checks read. */
export const SSHD_DEFAULTS: Record<string, string> = {
  port: "22",
  permitrootlogin: "prohibit-password",
  passwordauthentication: "yes",
  kbdinteractiveauthentication: "yes",
  usepam: "no",
  permitemptypasswords: "no",
  allowtcpforwarding: "yes",
  allowagentforwarding: "yes",
  x11forwarding: "no",
  authorizedkeysfile: ".ssh/authorized_keys .ssh/authorized_keys2",
  trustedusercakeys: "none",
  authorizedprincipalsfile: "none",
  authorizedprincipalscommand: "none",
  revokedkeys: "none",
  authorizedkeyscommand: "none",
  maxauthtries: "6",
  logingracetime: "120",
  clientaliveinterval: "0",
  clientalivecountmax: "3",
  tcpkeepalive: "yes",
  loglevel: "INFO",
  compression: "yes",
  banner: "none",
};

/** sshd's time format (`90`, `2m`, `1h30m`) in seconds; undefined when it is not one. */
export function sshdSeconds(v: string): number | undefined {
  const s = v.trim().toLowerCase();
  if (!/^(\d+[smhdw]?)+$/.test(s)) return undefined;
  const unit: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  let total = 0;
  for (const m of s.matchAll(/(\d+)([smhdw]?)/g)) total += Number(m[1]) * unit[m[2]!]!;
  return total;
}

function splitDirective(line: string): { key: string; args: string } | null {
  const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
  if (!m) return line ? { key: line.toLowerCase(), args: "" } : null;
  let args = m[2]!.trim();
  if (args.startsWith('"') && args.endsWith('"') && args.length >= 2) args = args.slice(1, -1);
  return { key: m[1]!.toLowerCase(), args };
}

/** The directives of one sshd_config file, keywords lowercased and aliases resolved, with their lines. */
export function sshdDirectives(text: string): Array<{ key: string; args: string; line: number }> {
  const out: Array<{ key: string; args: string; line: number }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const d = splitDirective(line);
    if (d) out.push({ key: ALIASES[d.key] ?? d.key, args: d.args, line: i + 1 });
  });
  return out;
}

/** Record a global setting the way sshd does: the first one wins unless the keyword accumulates. */
export function addSshdSetting(settings: SshdSettings, key: string, setting: SshdSetting): void {
  const have = entry(settings, key);
  if (!have) settings[key] = [setting];
  else if (ACCUMULATE.has(key)) have.push(setting);
}

/** Parse `sshd -T`: one lowercased keyword and its value per line, repeated for lists. */
export function parseSshdT(text: string): SshdSettings {
  const settings = table<SshdSetting[]>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const sp = line.indexOf(" ");
    const key = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
    const value = sp < 0 ? "" : line.slice(sp + 1).trim();
    const list = entry(settings, key) ?? (settings[key] = []);
    list.push({ value, source: "sshd -T" });
  }
  return settings;
}

export interface PortSource {
  port: number;
  source: string;
}

/**
 * Where sshd listens according to its settings: each ListenAddress with its own port, else with
 * every Port; with no ListenAddress, every Port on every address.
 */
export function configuredPorts(settings: SshdSettings): PortSource[] {
  const where = (s: SshdSetting) => (s.line !== undefined ? `${s.source} line ${s.line}` : s.source);
  const ports: PortSource[] = (entry(settings, "port") ?? [{ value: SSHD_DEFAULTS.port!, source: "default" }])
    .flatMap((s) => s.value.split(/\s+/).map((v) => ({ port: Number(v), source: where(s) })))
    .filter((p) => Number.isInteger(p.port) && p.port > 0 && p.port < 65536);
  const listen = entry(settings, "listenaddress") ?? [];
  if (listen.length === 0) return ports;
  const out: PortSource[] = [];
  for (const l of listen) {
    const addr = l.value.split(/\s+/)[0]!;
    const m = /^\[.*\]:(\d+)$/.exec(addr) ?? /^[^:]+:(\d+)$/.exec(addr);
    if (m) out.push({ port: Number(m[1]), source: where(l) });
    else out.push(...ports);
  }
  return out;
}

export interface AuthorizedKeys {
  user: string;
  path: string;
  keys: number;
}

export interface SshdFact {
  /** Where the effective settings came from: sshd's own view, or the config files read here. */
  via: "sshd -T" | "config";
  /** Why `sshd -T` was not used, when it was not. */
  viaReason?: string;
  settings: SshdSettings;
  matches: MatchOverride[];
  files: string[];
  configured: PortSource[];
  /** Ports held by processes named sshd (ss -ltnp), when the owners could be read. */
  liveOwned?: PortSource[];
  /** Live listeners on the configured ports (/proc/net/tcp), a weaker sign that sshd holds them. */
  listening: PortSource[];
  /** The ports a firewall must keep open and a jail must watch: configured and live, merged. */
  ports: number[];
  /** Users who can log in (root and every login shell) and their authorized keys. */
  keyUsers: string[];
  authorizedKeys: AuthorizedKeys[];
  /** Key files that could not be read (permission): keys may exist there. */
  keysUnknown: Problem[];
  /** Why the login users could not be listed (/etc/passwd unreadable), if so. */
  keysProblems: Problem[];
  /** RevokedKeys' file and the KRL fetcher's record, when a CA is trusted with RevokedKeys. */
  revocation?: RevocationFact;
  /** root's principals file, when a CA is trusted with an AuthorizedPrincipalsFile. */
  rootPrincipals?: RootPrincipals;
}

/** The AuthorizedPrincipalsFile sshd reads when a certificate logs in as root. */
export interface RootPrincipals {
  /** The file, its %-tokens expanded for root. */
  path: string;
  /** The principals it lists; empty when it is missing (root then takes no certificate). */
  principals: string[];
  /** Why it could not be read, if so. */
  problem?: string;
}

/**
 * A per-account path of sshd_config (AuthorizedKeysFile, AuthorizedPrincipalsFile) for one
 * account: %%, %h, %u and %U expanded, a relative path taken from the home.
 */
export function sshdPathFor(pattern: string, user: { name: string; uid: number; home: string }): string {
  const p = pattern.replace(/%%|%h|%u|%U/g, (t) =>
    t === "%%" ? "%" : t === "%h" ? user.home : t === "%u" ? user.name : String(user.uid),
  );
  return p.startsWith("/") ? p : `${user.home.replace(/\/$/, "")}/${p}`;
}

/** Whether each account reads its own principals file (the path names the user or the home). */
export function principalsPerAccount(pattern: string): boolean {
  return /%[uUh]/.test(pattern.replaceAll("%%", ""));
}

/** The principals a file lists: one a line, after any options; # comments and blanks skipped. */
export function parsePrincipals(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split(/[ \t]+/).pop()!);
}

/** The effective value of a single-valued keyword (first wins), with OpenSSH's default. */
export function sshdValue(f: Pick<SshdFact, "settings">, key: string): SshdSetting | undefined {
  const s = entry(f.settings, key)?.[0];
  if (s) return s;
  const d = SSHD_DEFAULTS[key];
  return d === undefined ? undefined : { value: d, source: "default" };
}
