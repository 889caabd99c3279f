/**
 * `--limit` as Ansible reads it: terms split on commas (or colons), each a host or group name,
 * a glob (`web*`), a regex (`~web[0-9]+`), or a group with a subscript (`web[0]`, `web[1:3]`,
 * inclusive); `&term` keeps only hosts also in it, `!term` removes its hosts. Plain terms are
 * taken first, then intersections, then exclusions, whatever their order. The hosts selected
 * come in the order `ansible all --list-hosts` prints them.
 *
 * One difference on purpose: a term that names no host and no group is an error here, where
 * Ansible warns and goes on. A typo in `--limit` of a command that changes servers should stop
 * it, not widen or narrow what it touches.
 */
import { UsageError } from "../errors.js";
import { allHosts, groupHosts } from "./inventory/graph.js";
import { parseAddress } from "./inventory/hostpattern.js";
import type { Inventory } from "./inventory/model.js";

/** The terms of a pattern: comma-separated, or colon-separated when it is not one host:port. */
export function splitPattern(pattern: string): string[] {
  let parts: string[];
  if (pattern.includes(",")) parts = pattern.split(",");
  else if (parseAddress(pattern)) parts = [pattern];
  else parts = pattern.match(/(?:[^\s:[\]]|\[[^\]]*\])+/g) ?? [];
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/** Python's fnmatch.translate: a glob as a regular expression over the whole name. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      let j = i + 1;
      if (glob[j] === "!") j++;
      if (glob[j] === "]") j++;
      while (j < glob.length && glob[j] !== "]") j++;
      if (j >= glob.length) re += "\\[";
      else {
        let set = glob.slice(i + 1, j).replace(/\\/g, "\\\\");
        if (set.startsWith("!")) set = "^" + set.slice(1);
        else if (set.startsWith("^")) set = "\\" + set;
        re += `[${set}]`;
        i = j;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^(?:${re})$`, "s");
}

function termRegExp(expr: string): RegExp {
  if (!expr.startsWith("~")) return globToRegExp(expr);
  try {
    return new RegExp(`^(?:${expr.slice(1)})`);
  } catch (e) {
    throw new UsageError(`"${expr}" is not a regular expression: ${(e as Error).message}`, {
      where: "--limit",
    });
  }
}

const SUBSCRIPT = /^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$/;

/** A term's hosts in Ansible's order (with repeats when a group and a glob both reach one). */
function termHosts(inv: Inventory, term: string): string[] {
  let expr = term;
  let sub: [number, number | undefined] | undefined;
  const m = expr.startsWith("~") ? null : SUBSCRIPT.exec(expr);
  if (m) {
    expr = m[1]!;
    sub = m[2] !== undefined ? [Number(m[2]), undefined] : [Number(m[3]), m[5] ? Number(m[5]) : -1];
  }
  const re = termRegExp(expr);
  const groups = [...inv.groups.keys()].filter((g) => re.test(g));
  const out = groups.flatMap((g) => groupHosts(inv, g));
  if (groups.length === 0 || expr.startsWith("~") || /[.?*[]/.test(expr))
    out.push(...[...inv.hosts.keys()].filter((h) => re.test(h)));
  if (out.length === 0 && groups.length === 0) {
    const names = [...inv.groups.keys()].filter((g) => g !== "all" && g !== "ungrouped");
    throw new UsageError(`no host or group matches "${expr}"`, {
      where: "--limit",
      hint: names.length ? `the inventory's groups: ${names.join(", ")}` : "the inventory has no groups",
    });
  }
  if (!sub) return out;
  const [start, end] = sub;
  const picked =
    end === undefined || end === 0
      ? [out[start < 0 ? out.length + start : start]]
      : out.slice(start, (end === -1 ? out.length - 1 : end) + 1);
  if (picked.length === 0 || picked[0] === undefined)
    throw new UsageError(`"${term}" picks no host: ${expr} has ${out.length}`, { where: "--limit" });
  return picked as string[];
}

/** The hosts `limit` selects from `inv` (every host without one), in inventory order. */
export function selectHosts(inv: Inventory, limit?: string): string[] {
  const everyone = allHosts(inv);
  if (limit === undefined) return everyone;
  const terms = splitPattern(limit);
  if (terms.length === 0) throw new UsageError("--limit is empty", { where: "--limit" });
  const file = terms.find((t) => t.startsWith("@"));
  if (file)
    throw new UsageError(`"${file}": reading hosts from a file is not supported`, { where: "--limit" });
  const plain = terms.filter((t) => !t.startsWith("&") && !t.startsWith("!"));
  const ordered = [
    ...(plain.length ? plain : ["all"]),
    ...terms.filter((t) => t.startsWith("&")),
    ...terms.filter((t) => t.startsWith("!")),
  ];
  let chosen: string[] = [];
  for (const t of ordered) {
    if (inv.hosts.has(t)) {
      if (!chosen.includes(t)) chosen.push(t);
      continue;
    }
    const these = new Set(termHosts(inv, t.startsWith("&") || t.startsWith("!") ? t.slice(1) : t));
    if (t.startsWith("!")) chosen = chosen.filter((h) => !these.has(h));
    else if (t.startsWith("&")) chosen = chosen.filter((h) => these.has(h));
    else for (const h of these) if (!chosen.includes(h)) chosen.push(h);
  }
  const keep = new Set(chosen);
  const selected = everyone.filter((h) => keep.has(h));
  if (selected.length === 0)
    throw new UsageError(`"${limit}" leaves no host to work on`, { where: "--limit" });
  return selected;
}
