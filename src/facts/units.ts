import { table } from "./record.js";

/** One assignment of a unit file, with where it was written. */
export interface Assignment {
  value: string;
  /** "path:line" */
  at: string;
}

/** section -> key -> assignments in order; an empty assignment clears what came before. */
export type LocatedUnit = Record<string, Record<string, Assignment[]>>;

/** Parse a unit file keeping the file and line of every assignment, for evidence. */
export function parseLocatedUnit(text: string, source: string, into: LocatedUnit = table()): LocatedUnit {
  let section = "";
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    // A trailing backslash continues the assignment on the next line.
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + " " + lines[++i]!;
    line = line.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      into[section] ??= table();
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !section) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const s = (into[section] ??= table());
    if (value === "") s[key] = [];
    else (s[key] ??= []).push({ value, at: `${source}:${start + 1}` });
  }
  return into;
}

/** A unit file without locations: section -> key -> values in order (renderers' tests read it). */
export type UnitFile = Record<string, Record<string, string[]>>;

export function parseUnitFile(text: string): UnitFile {
  const located = parseLocatedUnit(text, "");
  return Object.fromEntries(
    Object.entries(located).map(([section, keys]) => [
      section,
      Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, v.map((a) => a.value)])),
    ]),
  );
}

/** Split an ExecStart-like command line into words, honouring quotes. */
export function splitCommandLine(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

export function lastAssignment(unit: LocatedUnit, section: string, key: string): Assignment | undefined {
  const v = unit[section]?.[key];
  return v && v.length > 0 ? v[v.length - 1] : undefined;
}

/** `Environment=` words: `A=1 "B=two words"`. */
export function parseEnvironmentLine(value: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const word of splitCommandLine(value)) {
    const eq = word.indexOf("=");
    if (eq > 0) out.push([word.slice(0, eq), word.slice(eq + 1)]);
  }
  return out;
}

/** An EnvironmentFile: KEY=VALUE lines, comments, optional quotes. */
export function parseEnvironmentFile(text: string): Array<[string, string, number]> {
  const out: Array<[string, string, number]> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim().replace(/^export\s+/, "");
    if (!line || line.startsWith("#") || line.startsWith(";")) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) return;
    let v = m[2]!;
    if (
      (v.startsWith('"') && v.endsWith('"') && v.length >= 2) ||
      (v.startsWith("'") && v.endsWith("'") && v.length >= 2)
    )
      v = v.slice(1, -1);
    out.push([m[1]!, v, i + 1]);
  });
  return out;
}

/** Expand the systemd specifiers that matter in paths: %h (home), %u (user), %%. */
export function expandSpecifiers(s: string, vars: { home?: string; user?: string }): string {
  return s.replace(/%([%hu])/g, (all, c: string) => {
    if (c === "%") return "%";
    if (c === "h") return vars.home ?? all;
    return vars.user ?? all;
  });
}

/** `--name value` or `--name=value` from a command line. */
export function flagValue(words: string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === name && i + 1 < words.length) found = words[i + 1];
    else if (w.startsWith(`${name}=`)) found = w.slice(name.length + 1);
  }
  return found;
}

/** ExecStart's command without systemd's prefixes (`-`, `@`, `+`, `!`, `:`). */
export function execWords(execStart: string): string[] {
  const words = splitCommandLine(execStart);
  if (words[0]) words[0] = words[0].replace(/^[-@+!:]+/, "");
  return words;
}
