/**
 * An Ansible inventory as Ansible holds it once a file is read: hosts and groups in the order
 * they were first named, each group's own hosts, children and vars, and the implicit `all` and
 * `ungrouped`. The INI and YAML readers fill it through InventoryBuilder, which refuses what
 * Ansible refuses (a group that would contain itself, a child group that is never defined) with
 * the file and line.
 */
import { ConfigError } from "../../errors.js";

export type Vars = Record<string, unknown>;

export interface InventoryHost {
  name: string;
  /** Vars set on the host in the inventory file itself. */
  vars: Vars;
  /** Line where the host was first named. */
  line: number | undefined;
}

export interface InventoryGroup {
  name: string;
  /** Its own hosts, in the order they were added (not its children's). */
  hosts: string[];
  children: string[];
  vars: Vars;
  /** `ansible_group_priority`: orders groups of the same depth when their vars are merged. */
  priority: number;
}

export interface Inventory {
  file: string;
  /** Creation order, as Ansible's dicts keep it. */
  hosts: Map<string, InventoryHost>;
  /** `all` and `ungrouped` first, then creation order. */
  groups: Map<string, InventoryGroup>;
  /** `group_vars/NAME` and `host_vars/NAME` next to the file; they override the file's vars. */
  groupVarFiles: Map<string, Vars>;
  hostVarFiles: Map<string, Vars>;
  /** What Ansible would warn about and skip. */
  warnings: string[];
}

/** Where a problem is: the line and, for YAML, the key path. */
export interface At {
  line: number | undefined;
  keyPath?: string;
}

export class InventoryBuilder {
  private readonly inv: Inventory;

  constructor(readonly file: string) {
    this.inv = {
      file,
      hosts: new Map(),
      groups: new Map(),
      groupVarFiles: new Map(),
      hostVarFiles: new Map(),
      warnings: [],
    };
    this.group("all");
    this.group("ungrouped");
    this.inv.groups.get("all")!.children.push("ungrouped");
  }

  fail(at: At, reason: string): never {
    throw new ConfigError(this.file, [{ keyPath: at.keyPath ?? "", line: at.line, reason }], {
      hint: "fix the inventory at the line named (ansible-inventory -i FILE --list reads it the same way)",
    });
  }

  warn(at: At, message: string): void {
    this.inv.warnings.push(`${this.file}${at.line !== undefined ? `:${at.line}` : ""}: ${message}`);
  }

  hasGroup(name: string): boolean {
    return this.inv.groups.has(name);
  }

  group(name: string): InventoryGroup {
    let g = this.inv.groups.get(name);
    if (!g) {
      g = { name, hosts: [], children: [], vars: {}, priority: 1 };
      this.inv.groups.set(name, g);
    }
    return g;
  }

  /** Add host `name` to `group` (creating both as needed) and merge `vars` into the host's. */
  host(group: string, name: string, vars: Vars, at: At): void {
    let h = this.inv.hosts.get(name);
    if (!h) {
      h = { name, vars: {}, line: at.line };
      this.inv.hosts.set(name, h);
    }
    Object.assign(h.vars, vars);
    const g = this.group(group);
    if (!g.hosts.includes(name)) g.hosts.push(name);
  }

  setGroupVar(group: string, key: string, value: unknown, at: At): void {
    const g = this.group(group);
    if (key !== "ansible_group_priority") {
      g.vars[key] = value;
      return;
    }
    const n = typeof value === "number" ? value : Number(value);
    if (!Number.isInteger(n))
      this.fail(at, `ansible_group_priority must be an integer, got ${String(value)}`);
    g.priority = n;
  }

  /** Make `child` a child of `parent`; a child that is its own ancestor is refused. */
  child(parent: string, child: string, at: At): void {
    const p = this.group(parent);
    this.group(child);
    if (parent === child || this.descends(child, parent))
      this.fail(at, `adding group "${child}" as a child of "${parent}" makes a loop`);
    if (!p.children.includes(child)) p.children.push(child);
  }

  /** Whether `group` has `target` among its descendants. */
  private descends(group: string, target: string): boolean {
    const seen = new Set<string>();
    const walk = (g: string): boolean => {
      if (seen.has(g)) return false;
      seen.add(g);
      return (this.inv.groups.get(g)?.children ?? []).some((c) => c === target || walk(c));
    };
    return walk(group);
  }

  /**
   * The inventory as Ansible reconciles it: every group without a parent becomes a child of
   * `all`, and `ungrouped` holds exactly the hosts in no other group.
   */
  finish(): Inventory {
    const { groups, hosts } = this.inv;
    const hasParent = new Set<string>();
    for (const g of groups.values()) for (const c of g.children) hasParent.add(c);
    const all = groups.get("all")!;
    for (const g of groups.values())
      if (g.name !== "all" && !hasParent.has(g.name) && !all.children.includes(g.name))
        all.children.push(g.name);
    const grouped = new Set<string>();
    for (const g of groups.values())
      if (g.name !== "all" && g.name !== "ungrouped") for (const h of g.hosts) grouped.add(h);
    const ungrouped = groups.get("ungrouped")!;
    ungrouped.hosts = ungrouped.hosts.filter((h) => !grouped.has(h));
    for (const h of hosts.keys())
      if (!grouped.has(h) && !ungrouped.hosts.includes(h)) ungrouped.hosts.push(h);
    return this.inv;
  }
}
