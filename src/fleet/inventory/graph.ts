/**
 * What an inventory's group tree says about its hosts, as Ansible works it out: which hosts a
 * group holds (its own, then its descendants' level by level), which groups a host is in (its
 * own and their ancestors), and a host's vars, merged from `all` down to the host with deeper
 * groups winning, then `ansible_group_priority`, then the group's name.
 */
import type { Inventory, InventoryGroup, Vars } from "./model.js";

/** Descendants of `group` (itself first), level by level, each level in the order they were added. */
function descendants(inv: Inventory, group: string): InventoryGroup[] {
  const start = inv.groups.get(group);
  if (!start) return [];
  const ordered = [start];
  const seen = new Set([start.name]);
  let level = [start];
  while (level.length > 0) {
    const next: InventoryGroup[] = [];
    for (const g of level)
      for (const c of g.children) {
        const child = inv.groups.get(c);
        if (!child || seen.has(c)) continue;
        seen.add(c);
        ordered.push(child);
        next.push(child);
      }
    level = next;
  }
  return ordered;
}

/** The hosts of `group` and of every group below it, each once, in Ansible's order. */
export function groupHosts(inv: Inventory, group: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const g of descendants(inv, group))
    for (const h of g.hosts)
      if (!seen.has(h)) {
        seen.add(h);
        out.push(h);
      }
  return out;
}

/** Every host, in the order `ansible all --list-hosts` prints them. */
export function allHosts(inv: Inventory): string[] {
  return groupHosts(inv, "all");
}

/** Each group's depth: the longest path to it from `all`. */
export function groupDepths(inv: Inventory): Map<string, number> {
  const depth = new Map<string, number>([["all", 0]]);
  // The tree has no loops (the builder refuses them), so relaxing edges in rounds ends.
  let changed = true;
  while (changed) {
    changed = false;
    for (const g of inv.groups.values()) {
      const d = depth.get(g.name);
      if (d === undefined) continue;
      for (const c of g.children)
        if ((depth.get(c) ?? -1) < d + 1) {
          depth.set(c, d + 1);
          changed = true;
        }
    }
  }
  return depth;
}

/** The groups `host` is in, directly or through a child group, `all` included. */
export function hostGroups(inv: Inventory, host: string): string[] {
  const parents = new Map<string, string[]>();
  for (const g of inv.groups.values())
    for (const c of g.children) parents.set(c, [...(parents.get(c) ?? []), g.name]);
  const out = new Set<string>();
  const climb = (g: string) => {
    if (out.has(g)) return;
    out.add(g);
    for (const p of parents.get(g) ?? []) climb(p);
  };
  for (const g of inv.groups.values()) if (g.hosts.includes(host)) climb(g.name);
  out.add("all");
  return [...out];
}

/**
 * `host`'s vars as `ansible-inventory --list` shows them: the file's `all` vars, its other
 * groups' vars in Ansible's order, then `group_vars/all`, the other `group_vars/` files in the
 * same order, the host's own vars from the file, and last `host_vars/HOST`.
 */
export function hostVars(inv: Inventory, host: string): Vars {
  const depth = groupDepths(inv);
  const groups = hostGroups(inv, host)
    .filter((g) => g !== "all")
    .map((g) => inv.groups.get(g)!)
    .sort(
      (a, b) =>
        (depth.get(a.name) ?? 0) - (depth.get(b.name) ?? 0) ||
        a.priority - b.priority ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
  return Object.assign(
    {},
    inv.groups.get("all")?.vars,
    ...groups.map((g) => g.vars),
    inv.groupVarFiles.get("all"),
    ...groups.map((g) => inv.groupVarFiles.get(g.name)),
    inv.hosts.get(host)?.vars,
    inv.hostVarFiles.get(host),
  ) as Vars;
}
