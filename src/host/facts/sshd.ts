import type { FactContext } from "../context.js";
import { HostError, type Problem } from "../errors.js";
import { gather, ok, skipped, toProblem, type Fact } from "../fact.js";
import type { Host } from "../host.js";
import { gatherSocketOwners } from "./firewall-live.js";
import { gatherListeners } from "./sockets.js";
import { gatherUsers } from "./users.js";

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

export interface SshdConfigParse {
  /** First value wins for single-valued keywords (lowercased); accumulating ones keep every value. */
  settings: Map<string, SshdSetting[]>;
  matches: MatchOverride[];
  files: string[];
  problems: Problem[];
}

/** Keywords whose every occurrence counts; for all others sshd keeps the first one. */
const ACCUMULATE = new Set(["port", "listenaddress", "hostkey", "include", "acceptenv", "subsystem"]);
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
};

function splitDirective(line: string): { key: string; args: string } | null {
  const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
  if (!m) return line ? { key: line.toLowerCase(), args: "" } : null;
  let args = m[2]!.trim();
  if (args.startsWith('"') && args.endsWith('"') && args.length >= 2) args = args.slice(1, -1);
  return { key: m[1]!.toLowerCase(), args };
}

function globToRegExp(seg: string): RegExp {
  let re = "";
  for (const c of seg) {
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Expand a glob(7) pattern on the audited system, sorted as glob(3) sorts. */
export async function expandGlob(host: Host, pattern: string): Promise<string[]> {
  const parts = pattern.split("/").filter(Boolean);
  let paths = [""];
  for (const part of parts) {
    const next: string[] = [];
    if (!/[*?]/.test(part)) {
      for (const p of paths) next.push(`${p}/${part}`);
    } else {
      const re = globToRegExp(part);
      for (const p of paths) {
        let entries;
        try {
          entries = await host.readDir(p || "/");
        } catch (err) {
          if (err instanceof HostError && err.problem.kind === "missing") continue;
          throw err;
        }
        for (const e of entries) if (re.test(e.name) && !e.name.startsWith(".")) next.push(`${p}/${e.name}`);
      }
    }
    paths = next;
  }
  if (!/[*?]/.test(pattern)) return paths;
  const existing: string[] = [];
  for (const p of paths) if (await host.stat(p)) existing.push(p);
  return existing.sort();
}

/**
 * Read sshd_config the way sshd does: `Include` expanded in place (globs, paths relative to
 * /etc/ssh), the first value of a keyword wins, and a `Match` block (which ends at the next
 * Match or at the end of the file that opened it) does not set global values.
 */
export async function parseSshdConfig(host: Host, path = SSHD_CONFIG): Promise<SshdConfigParse> {
  const out: SshdConfigParse = { settings: new Map(), matches: [], files: [], problems: [] };
  const visit = async (file: string, inherited: string | null, depth: number): Promise<void> => {
    if (depth > 16) {
      out.problems.push({ kind: "malformed", source: file, message: "Include nested more than 16 deep" });
      return;
    }
    const text = await host.readFile(file);
    out.files.push(file);
    let match = inherited;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (!line || line.startsWith("#")) continue;
      const d = splitDirective(line);
      if (!d) continue;
      const key = ALIASES[d.key] ?? d.key;
      if (key === "match") {
        match = /^all$/i.test(d.args) ? null : d.args;
        continue;
      }
      if (key === "include") {
        for (const pat of d.args.split(/\s+/).filter(Boolean)) {
          const abs = pat.startsWith("/") ? pat : `/etc/ssh/${pat}`;
          for (const inc of await expandGlob(host, abs)) {
            try {
              await visit(inc, match, depth + 1);
            } catch (err) {
              // sshd skips an Include that matches nothing, so a missing file is no problem.
              const p = toProblem(inc, err);
              if (p.kind !== "missing") out.problems.push(p);
            }
          }
        }
        continue;
      }
      if (match !== null) {
        out.matches.push({ criteria: match, key, value: d.args, source: file, line: i + 1 });
        continue;
      }
      const have = out.settings.get(key);
      const setting = { value: d.args, source: file, line: i + 1 };
      if (!have) out.settings.set(key, [setting]);
      else if (ACCUMULATE.has(key)) have.push(setting);
    }
  };
  await visit(path, null, 0);
  return out;
}

/** Parse `sshd -T`: one lowercased keyword and its value per line, repeated for lists. */
export function parseSshdT(text: string): Map<string, SshdSetting[]> {
  const settings = new Map<string, SshdSetting[]>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const sp = line.indexOf(" ");
    const key = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
    const value = sp < 0 ? "" : line.slice(sp + 1).trim();
    const list = settings.get(key) ?? [];
    list.push({ value, source: "sshd -T" });
    settings.set(key, list);
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
export function configuredPorts(settings: Map<string, SshdSetting[]>): PortSource[] {
  const where = (s: SshdSetting) => (s.line !== undefined ? `${s.source} line ${s.line}` : s.source);
  const ports: PortSource[] = (settings.get("port") ?? [{ value: SSHD_DEFAULTS.port!, source: "default" }])
    .flatMap((s) => s.value.split(/\s+/).map((v) => ({ port: Number(v), source: where(s) })))
    .filter((p) => Number.isInteger(p.port) && p.port > 0 && p.port < 65536);
  const listen = settings.get("listenaddress") ?? [];
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
  settings: Map<string, SshdSetting[]>;
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
}

/** The effective value of a single-valued keyword (first wins), with OpenSSH's default. */
export function sshdValue(f: Pick<SshdFact, "settings">, key: string): SshdSetting | undefined {
  const s = f.settings.get(key)?.[0];
  if (s) return s;
  const d = SSHD_DEFAULTS[key];
  return d === undefined ? undefined : { value: d, source: "default" };
}

const NO_LOGIN = /(?:^|\/)(?:nologin|false|sync|halt|shutdown)$/;

async function readAuthorizedKeys(
  ctx: FactContext,
  files: string,
): Promise<{ users: string[]; keys: AuthorizedKeys[]; unknown: Problem[]; problems: Problem[] }> {
  const users = await ctx.get(gatherUsers);
  if (users.status !== "ok")
    return { users: [], keys: [], unknown: [], problems: users.status === "error" ? users.problems : [] };
  const loginUsers = users.value.users.filter((u) => u.uid === 0 || !NO_LOGIN.test(u.shell.trim()));
  const patterns = files.split(/\s+/).filter((p) => p && p !== "none");
  const keys: AuthorizedKeys[] = [];
  const unknown: Problem[] = [];
  for (const u of loginUsers) {
    for (const pat of patterns) {
      const expanded = pat.replace(/%%|%h|%u|%U/g, (t) =>
        t === "%%" ? "%" : t === "%h" ? u.home : t === "%u" ? u.name : String(u.uid),
      );
      const path = expanded.startsWith("/") ? expanded : `${u.home.replace(/\/$/, "")}/${expanded}`;
      try {
        const text = await ctx.host.readFile(path);
        const n = text.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#")).length;
        if (n > 0) keys.push({ user: u.name, path, keys: n });
      } catch (err) {
        if (err instanceof HostError && err.problem.kind === "missing") continue;
        if (err instanceof HostError) unknown.push(err.problem);
        else throw err;
      }
    }
  }
  return { users: loginUsers.map((u) => u.name), keys, unknown, problems: [] };
}

async function tryInstalledSshdT(host: Host): Promise<{ text?: string; reason: string }> {
  try {
    const r = await host.run("sshd", ["-T"]);
    if (r.code === 0 && r.stdout.includes("permitrootlogin")) return { text: r.stdout, reason: "" };
    return { reason: `sshd -T exited ${r.code}: ${r.stderr.trim().split("\n")[0] ?? ""}` };
  } catch (err) {
    if (err instanceof HostError) return { reason: err.problem.message };
    throw err;
  }
}

/**
 * sshd's effective settings, its real ports and who can log in with a key. Shared by the ssh,
 * firewall and fail2ban layers (and harden): they must all agree on which port is SSH.
 */
export function gatherSshd(ctx: FactContext): Promise<Fact<SshdFact>> {
  return gather(SSHD_CONFIG, async () => {
    const problems: Problem[] = [];
    let parsed: SshdConfigParse | undefined;
    try {
      parsed = await parseSshdConfig(ctx.host);
      problems.push(...parsed.problems);
    } catch (err) {
      const p = toProblem(SSHD_CONFIG, err);
      if (p.kind !== "missing") problems.push(p);
    }
    const t = await tryInstalledSshdT(ctx.host);
    if (!parsed && !t.text) {
      if (problems.length > 0) return { status: "error", problems };
      return skipped(`sshd is not installed (no ${SSHD_CONFIG})`);
    }
    const settings = t.text ? parseSshdT(t.text) : parsed!.settings;
    const configured = configuredPorts(settings);
    const [owners, listeners] = await Promise.all([ctx.get(gatherSocketOwners), ctx.get(gatherListeners)]);
    const liveOwned =
      owners.status === "ok"
        ? owners.value
            .filter((s) => s.processes.includes("sshd"))
            .map((s) => ({ port: s.port, source: `ss -Hltnp ${s.address}:${s.port} sshd` }))
        : undefined;
    const wanted = new Set(configured.map((p) => p.port));
    const listening =
      listeners.status === "ok"
        ? listeners.value
            .filter((l) => wanted.has(l.port))
            .map((l) => ({ port: l.port, source: `${l.source} ${l.address}:${l.port}` }))
        : [];
    const ports = [
      ...new Set([...configured.map((p) => p.port), ...(liveOwned ?? []).map((p) => p.port)]),
    ].sort((a, b) => a - b);
    const keyFiles = sshdValue({ settings }, "authorizedkeysfile")!.value;
    const keys = await readAuthorizedKeys(ctx, keyFiles);
    const files = parsed?.files ?? [];
    return ok(
      {
        via: t.text ? "sshd -T" : "config",
        viaReason: t.text ? undefined : t.reason,
        settings,
        matches: parsed?.matches ?? [],
        files,
        configured,
        liveOwned,
        listening,
        ports,
        keyUsers: keys.users,
        authorizedKeys: keys.keys,
        keysUnknown: keys.unknown,
        keysProblems: keys.problems,
      },
      t.text ? ["sshd -T", ...files] : files,
      problems,
    );
  });
}
