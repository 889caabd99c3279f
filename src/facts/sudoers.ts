/** One sudoers rule: who (as written) may run what, and where it was written. */
export interface SudoRule {
  /** User list entries: names, %group, %:group, #uid, %#gid, ALL, or aliases (already expanded). */
  who: string[];
  /** Everything after `=`: run-as, tags and commands. */
  grants: string;
  source: string;
  line: number;
}

export interface SudoersFact {
  rules: SudoRule[];
  files: string[];
}

export interface ParsedSudoers {
  rules: SudoRule[];
  aliases: Map<string, string[]>;
  includes: Array<{ path: string; dir: boolean }>;
}

function splitList(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

/** Parse one sudoers file: rules, User_Alias definitions and include directives. */
export function parseSudoers(text: string, source: string): ParsedSudoers {
  const out: ParsedSudoers = { rules: [], aliases: new Map(), includes: [] };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + " " + lines[++i]!;
    line = line.trim();
    const inc = /^[@#](include|includedir)\s+(.+)$/.exec(line);
    if (inc) {
      out.includes.push({ path: inc[2]!.trim().replace(/^"|"$/g, ""), dir: inc[1] === "includedir" });
      continue;
    }
    // `#` starts a comment unless it is a uid (`#1000`) at the start of a user list.
    line = line.replace(/(^|\s)#(?!\d).*$/, "").trim();
    if (!line || /^Defaults([:@!>\s]|$)/.test(line)) continue;
    const alias = /^User_Alias\s+(.+)$/.exec(line);
    if (alias) {
      for (const def of alias[1]!.split(":")) {
        const m = /^\s*([A-Z][A-Z0-9_]*)\s*=\s*(.+)$/.exec(def);
        if (m) out.aliases.set(m[1]!, splitList(m[2]!));
      }
      continue;
    }
    if (/^(Runas|Host|Cmnd|Cmd)_Alias\s/.test(line)) continue;
    const rule = /^((?:[^\s,=]+\s*,\s*)*[^\s,=]+)\s+[^=]+=\s*(.+)$/.exec(line);
    if (rule) out.rules.push({ who: splitList(rule[1]!), grants: rule[2]!.trim(), source, line: start });
  }
  return out;
}

export function expandAliases(who: string[], aliases: Map<string, string[]>, depth = 0): string[] {
  if (depth > 8) return who;
  return who.flatMap((w) => {
    const a = aliases.get(w.replace(/^!/, ""));
    return a ? expandAliases(a, aliases, depth + 1) : [w];
  });
}

/** The rules that give `user` (with uid and groups given) any sudo rights. */
export function sudoRulesFor(
  fact: SudoersFact,
  user: { name: string; uid: number },
  groups: Array<{ name: string; gid: number }>,
): SudoRule[] {
  const groupNames = new Set(groups.map((g) => g.name));
  const gids = new Set(groups.map((g) => String(g.gid)));
  const matches = (w: string): boolean => {
    if (w === "ALL" || w === user.name || w === `#${user.uid}`) return true;
    const g = /^%:?(.+)$/.exec(w)?.[1];
    if (!g) return false;
    if (g.startsWith("#")) return gids.has(g.slice(1));
    return groupNames.has(g);
  };
  return fact.rules.filter((r) => {
    const negated = r.who.some((w) => w.startsWith("!") && matches(w.slice(1)));
    return !negated && r.who.some((w) => !w.startsWith("!") && matches(w));
  });
}
