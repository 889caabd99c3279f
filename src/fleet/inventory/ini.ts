/**
 * Ansible's INI inventory format, read as Ansible's `ini` plugin reads it: hosts before any
 * section are ungrouped; `[group]` lists hosts (`name[:port] key=value ...`, ranges allowed),
 * `[group:vars]` sets the group's vars, `[group:children]` names child groups, which may be
 * declared further down but must be declared somewhere. Values go through Python's literal
 * rules (pyliteral.ts). Every problem names the file and line.
 */
import { shlexSplit, ShlexError } from "../shell.js";
import { expandHostPattern, HostPatternError } from "./hostpattern.js";
import { InventoryBuilder, type Inventory, type Vars } from "./model.js";
import { pythonLiteral } from "./pyliteral.js";

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const GROUP_NAME = /^([^:\]\s]+)\s*(?:#.*)?$/;

type State = "hosts" | "vars" | "children";

interface Pending {
  line: number;
  state: "vars" | "children";
  parents: string[];
}

export function parseIni(text: string, file: string): Inventory {
  const b: InventoryBuilder = new InventoryBuilder(file);
  const pending = new Map<string, Pending>();
  let group = "ungrouped";
  let state: State = "hosts";

  const addPendingChildren = (name: string): void => {
    const p = pending.get(name);
    if (!p) return;
    pending.delete(name);
    for (const parent of p.parents) {
      b.child(parent, name, { line: p.line });
      if (pending.get(parent)?.state === "children") addPendingChildren(parent);
    }
  };

  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const at = { line: index + 1 };
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;

    const section = SECTION.exec(line);
    if (section) {
      group = section[1]!;
      const tag = section[2] ?? "hosts";
      if (tag !== "hosts" && tag !== "vars" && tag !== "children")
        b.fail(at, `section [${group}:${tag}] has an unknown type "${tag}" (hosts, vars or children)`);
      state = tag;
      if (!b.hasGroup(group) && state === "vars" && !pending.has(group))
        pending.set(group, { line: at.line, state: "vars", parents: [] });
      b.group(group);
      if (state !== "vars") {
        if (pending.get(group)?.state === "children") addPendingChildren(group);
        else if (pending.get(group)?.state === "vars") pending.delete(group);
      }
      return;
    }
    if (line.startsWith("[") && line.endsWith("]"))
      b.fail(
        at,
        `invalid section "${line}": a section is [name], [name:vars] or [name:children], without spaces`,
      );

    if (state === "hosts") {
      let tokens: string[];
      try {
        tokens = shlexSplit(line, { comments: true });
      } catch (e) {
        if (e instanceof ShlexError) b.fail(at, `cannot read the host line: ${e.message}`);
        throw e;
      }
      const first = tokens[0];
      if (first === undefined) return;
      if (first.endsWith(":") && !/:[0-9]+$/.test(first))
        b.fail(at, `"${first}": a host name may not end in ":" (it is there for a port)`);
      if (first === "---")
        b.fail(at, `"---" starts a YAML document: is this a YAML inventory (name it .yml)?`);
      const vars: Vars = {};
      for (const t of tokens.slice(1)) {
        const eq = t.indexOf("=");
        if (eq < 0) b.fail(at, `expected key=value after the host name, got "${t}"`);
        vars[t.slice(0, eq)] = pythonLiteral(t.slice(eq + 1));
      }
      let expanded: ReturnType<typeof expandHostPattern>;
      try {
        expanded = expandHostPattern(first);
      } catch (e) {
        if (e instanceof HostPatternError) b.fail(at, e.message);
        throw e;
      }
      // A port after the name is set first, so an ansible_port on the line wins over it.
      const withPort: Vars = expanded.port !== undefined ? { ansible_port: expanded.port, ...vars } : vars;
      for (const name of expanded.names) b.host(group, name, withPort, at);
      return;
    }

    if (state === "vars") {
      const eq = line.indexOf("=");
      if (eq < 0) b.fail(at, `expected key=value in [${group}:vars], got "${line}"`);
      b.setGroupVar(group, line.slice(0, eq).trim(), pythonLiteral(line.slice(eq + 1).trim()), at);
      return;
    }

    const child = GROUP_NAME.exec(line)?.[1];
    if (child === undefined) b.fail(at, `"${line}" is not a group name`);
    if (b.hasGroup(child)) b.child(group, child, at);
    else {
      const p = pending.get(child);
      if (p?.state === "children") p.parents.push(group);
      else pending.set(child, { line: at.line, state: "children", parents: [group] });
    }
  });

  for (const [name, p] of pending) {
    if (p.state === "vars") b.fail({ line: p.line }, `[${name}:vars] is for a group that is never declared`);
    b.fail(
      { line: p.line },
      `[${p.parents[p.parents.length - 1]}:children] names group "${name}", which is never declared`,
    );
  }
  return b.finish();
}
