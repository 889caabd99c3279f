import type { FactContext } from "../context.js";
import { HostError } from "../errors.js";

/** A parsed systemd unit file: section -> key -> values in order (an empty value resets). */
export type UnitFile = Record<string, Record<string, string[]>>;

export function parseUnitFile(text: string, into: UnitFile = {}): UnitFile {
  let section = "";
  const lines = text.replace(/\\\r?\n/g, " ").split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      into[section] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !section) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const s = (into[section] ??= {});
    // Like systemd: an empty assignment clears list settings set before it.
    if (value === "") s[key] = [];
    else (s[key] ??= []).push(value);
  }
  return into;
}

/** The last value of a key, as systemd reads single-valued settings. */
export function lastValue(unit: UnitFile, section: string, key: string): string | undefined {
  const v = unit[section]?.[key];
  return v && v.length > 0 ? v[v.length - 1] : undefined;
}

/**
 * Read a unit and its drop-ins (`NAME.d/*.conf` next to it and in /etc/systemd/system), merged
 * in systemd's order. Returns null when the unit file does not exist.
 */
export async function readUnitWithDropIns(
  ctx: FactContext,
  path: string,
): Promise<{ unit: UnitFile; sources: string[] } | null> {
  let text: string;
  try {
    text = await ctx.host.readFile(path);
  } catch (err) {
    if (err instanceof HostError && err.problem.kind === "missing") return null;
    throw err;
  }
  const unit = parseUnitFile(text);
  const sources = [path];
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dirs = [...new Set([`${path}.d`, `/etc/systemd/system/${name}.d`, `/run/systemd/system/${name}.d`])];
  const dropIns = new Map<string, string>();
  for (const dir of dirs) {
    try {
      for (const e of await ctx.host.readDir(dir)) {
        if (e.name.endsWith(".conf") && !dropIns.has(e.name)) dropIns.set(e.name, `${dir}/${e.name}`);
      }
    } catch (err) {
      if (!(err instanceof HostError && err.problem.kind === "missing")) throw err;
    }
  }
  for (const name of [...dropIns.keys()].sort()) {
    const p = dropIns.get(name)!;
    parseUnitFile(await ctx.host.readFile(p), unit);
    sources.push(p);
  }
  return { unit, sources };
}

/** Split an ExecStart-like command line into words, honouring quotes. */
export function splitCommandLine(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}
