/**
 * Ansible's YAML inventory format, read as Ansible's `yaml` plugin reads it: each top-level key
 * is a group (usually just `all`) with optional `hosts`, `vars` and `children`, children nest
 * the same way, and a host's value holds its vars. YAML 1.1, as Ansible parses it, so `yes` is
 * true. Keys Ansible skips with a warning are skipped with one; a wrong shape is an error naming
 * the line and key path. Repeated keys are refused (Ansible keeps the last one silently).
 */
import { formatKeyPath, parseYaml, type Locator, type Segment } from "../../yaml/read.js";
import { expandHostPattern, HostPatternError } from "./hostpattern.js";
import { InventoryBuilder, type Inventory, type Vars } from "./model.js";

const SECTIONS = ["vars", "children", "hosts"] as const;

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

export function parseYamlInventory(text: string, file: string): Inventory {
  const { data, loc } = parseYaml(text, file, {
    list: false,
    reason: "a YAML inventory is a mapping of groups, usually starting with `all:`",
    hint: "fix the inventory at the line named (ansible-inventory -i FILE --list reads it the same way)",
    version: "1.1",
  });
  const b: InventoryBuilder = new InventoryBuilder(file);
  const top = data as Record<string, unknown>;
  if ("plugin" in top)
    b.fail({ line: loc.line(["plugin"]) }, "this is an inventory plugin's config, not an inventory");
  for (const [name, body] of Object.entries(top)) readGroup(b, loc, name, body, [name]);
  return b.finish();
}

function readGroup(b: InventoryBuilder, loc: Locator, name: string, body: unknown, path: Segment[]): void {
  // The line of the key that names the node, which is where a person looks for it.
  const at = (p: Segment[]) => ({
    line: loc.line(p.slice(0, -1), String(p[p.length - 1])),
    keyPath: formatKeyPath(p),
  });
  if (body !== null && !isMap(body)) {
    b.warn(at(path), `skipping "${name}": a group is a mapping (hosts, vars, children)`);
    return;
  }
  b.group(name);
  if (body === null) return;
  for (const section of SECTIONS) {
    const v = body[section];
    if (typeof v === "string") body[section] = { [v]: null };
    else if (v !== undefined && v !== null && !isMap(v))
      b.fail(at([...path, section]), `"${section}" of group "${name}" must be a mapping`);
  }
  for (const [key, value] of Object.entries(body)) {
    const here = [...path, key];
    if (value === null) continue;
    if (!isMap(value)) {
      b.warn(at(here), `skipping key "${key}" of group "${name}": it is not a mapping`);
      continue;
    }
    if (key === "vars") {
      for (const [k, v] of Object.entries(value)) b.setGroupVar(name, k, v, at([...here, k]));
    } else if (key === "children") {
      for (const [child, childBody] of Object.entries(value)) {
        readGroup(b, loc, child, childBody, [...here, child]);
        b.child(name, child, at([...here, child]));
      }
    } else if (key === "hosts") {
      for (const [pattern, vars] of Object.entries(value))
        readHost(b, at([...here, pattern]), name, pattern, vars);
    } else {
      b.warn(
        at(here),
        `skipping key "${key}" of group "${name}": only vars, children and hosts mean something`,
      );
    }
  }
}

function readHost(
  b: InventoryBuilder,
  at: { line: number | undefined; keyPath: string },
  group: string,
  pattern: string,
  vars: unknown,
): void {
  if (vars !== null && !isMap(vars)) b.fail(at, `host "${pattern}" must map to its vars (or to nothing)`);
  let expanded: ReturnType<typeof expandHostPattern>;
  try {
    expanded = expandHostPattern(pattern);
  } catch (e) {
    if (e instanceof HostPatternError) b.fail(at, e.message);
    throw e;
  }
  const own: Vars = { ...(vars ?? {}) };
  const withPort: Vars = expanded.port !== undefined ? { ansible_port: expanded.port, ...own } : own;
  for (const name of expanded.names) b.host(group, name, withPort, at);
}
