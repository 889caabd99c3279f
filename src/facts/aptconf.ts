import { MalformedError } from "./fact.js";
import { entry, table } from "./record.js";

/** One setting of apt's configuration, with the file and line that set it last. */
export interface AptSetting {
  value: string;
  source: string;
  line: number;
}

/** apt settings by lowercased `A::B::C` key (apt's keys are case-insensitive). */
export type AptConfig = Record<string, AptSetting>;

/**
 * Parse apt.conf syntax: `A::B "v";`, nested `A { B "v"; };`, comments (`//`, `#`, `/* *\/`),
 * `#clear`/`#include` directives ignored. List values (`A { "x"; "y"; };`) become `A::` entries
 * joined by newlines.
 */
export function parseAptConf(text: string, source: string, into: AptConfig = table()): AptConfig {
  const tokens: Array<{ t: string; line: number; quoted: boolean }> = [];
  let i = 0;
  let line = 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === "/" && text[i + 1] === "/") while (i < text.length && text[i] !== "\n") i++;
    else if (c === "#") while (i < text.length && text[i] !== "\n") i++;
    else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) throw new MalformedError("unterminated /* comment", line);
      line += text.slice(i, end).split("\n").length - 1;
      i = end + 2;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new MalformedError("unterminated string", line);
      tokens.push({ t: text.slice(i + 1, end), line, quoted: true });
      line += text.slice(i, end).split("\n").length - 1;
      i = end + 1;
    } else if (c === "{" || c === "}" || c === ";") {
      tokens.push({ t: c, line, quoted: false });
      i++;
    } else {
      let j = i;
      while (j < text.length && !/[\s{};"]/.test(text[j]!)) j++;
      tokens.push({ t: text.slice(i, j), line, quoted: false });
      i = j;
    }
  }
  const scope: string[] = [];
  const lists = new Map<string, string[]>();
  let k = 0;
  while (k < tokens.length) {
    const tok = tokens[k]!;
    if (tok.t === "}" && !tok.quoted) {
      if (scope.length === 0) throw new MalformedError("unmatched }", tok.line);
      scope.pop();
      k++;
      if (tokens[k]?.t === ";") k++;
      continue;
    }
    if (tok.t === ";" && !tok.quoted) {
      k++;
      continue;
    }
    const next = tokens[k + 1];
    if (tok.quoted) {
      // A bare value inside a block: a list item.
      const key = scope.join("::").toLowerCase();
      const items = lists.get(key) ?? [];
      items.push(tok.t);
      lists.set(key, items);
      into[key] = { value: items.join("\n"), source, line: tok.line };
      k += next?.t === ";" ? 2 : 1;
      continue;
    }
    if (next?.t === "{" && !next.quoted) {
      scope.push(tok.t.replace(/::$/, ""));
      k += 2;
      continue;
    }
    if (next?.quoted) {
      const key = [...scope, tok.t].join("::").toLowerCase();
      into[key] = { value: next.t, source, line: tok.line };
      if (tokens[k + 2]?.t !== ";") throw new MalformedError(`missing ";" after ${tok.t}`, next.line);
      k += 3;
      continue;
    }
    throw new MalformedError(`unexpected "${tok.t}"`, tok.line);
  }
  if (scope.length > 0) throw new MalformedError(`unclosed block ${scope.join("::")}`, line);
  return into;
}

export interface AptConfFact {
  config: AptConfig;
  files: string[];
}

/** The setting of a key (any case, `A::B::C`), as apt would read it. */
export function aptSetting(f: AptConfFact, key: string): AptSetting | undefined {
  return entry(f.config, key.toLowerCase());
}
