/**
 * Reading an inventory file from disk: which format it is in (YAML by its extension or its first
 * line, a plain `user@host` list, else INI, as Ansible tries them), and the `group_vars/` and
 * `host_vars/` next to it, as Ansible's host_group_vars plugin finds them.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { ConfigError, FileUnreadableError } from "../../errors.js";
import { parseYaml, readConfigText } from "../../yaml/read.js";
import { parseIni } from "./ini.js";
import type { Inventory, Vars } from "./model.js";
import { isPlainList, parsePlainList } from "./plain.js";
import { parseYamlInventory } from "./yaml.js";

export type InventoryFormat = "yaml" | "ini" | "plain";

const YAML_EXTENSIONS = [".yml", ".yaml", ".json"];
const HINT = "give -i an Ansible inventory (INI or YAML) or a list of user@host[:port], one a line";

/** The format of `text` read from `file`. */
export function detectFormat(file: string, text: string): InventoryFormat {
  const ext = path.extname(file).toLowerCase();
  if (YAML_EXTENSIONS.includes(ext)) return "yaml";
  if (ext === ".ini" || ext === ".cfg") return "ini";
  const first = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== "" && !l.startsWith("#") && !l.startsWith(";"));
  // A YAML inventory opens with a document marker or a `group:` key; no INI line can.
  if (first !== undefined && (first === "---" || /^[^\s[=#;:'"][^\s=]*:(?:\s|$)/.test(first))) return "yaml";
  return isPlainList(text) ? "plain" : "ini";
}

export function parseInventory(text: string, file: string): Inventory {
  switch (detectFormat(file, text)) {
    case "yaml":
      return parseYamlInventory(text, file);
    case "plain":
      return parsePlainList(text, file);
    case "ini":
      return parseIni(text, file);
  }
}

export async function loadInventory(file: string): Promise<Inventory> {
  const st = await stat(file).catch(() => null);
  if (st?.isDirectory())
    throw new FileUnreadableError(file, "is a directory", { hint: "give -i the inventory file inside it" });
  const inv = parseInventory(await readConfigText(file, HINT), file);
  const dir = path.dirname(file);
  for (const name of inv.groups.keys()) {
    const vars = await varsFiles(path.join(dir, "group_vars"), name);
    if (vars) inv.groupVarFiles.set(name, vars);
  }
  for (const name of inv.hosts.keys()) {
    const vars = await varsFiles(path.join(dir, "host_vars"), name);
    if (vars) inv.hostVarFiles.set(name, vars);
  }
  return inv;
}

/** Files in `dir` named `name` (bare or .yml/.yaml/.json), or every such file under `dir/name/`. */
async function varsFiles(dir: string, name: string): Promise<Vars | undefined> {
  const found: string[] = [];
  for (const candidate of ["", ...YAML_EXTENSIONS].map((ext) => path.join(dir, name + ext))) {
    const st = await stat(candidate).catch(() => null);
    if (st?.isFile()) found.push(candidate);
    else if (st?.isDirectory()) found.push(...(await walk(candidate)));
  }
  if (found.length === 0) return undefined;
  const merged: Vars = {};
  for (const f of found) Object.assign(merged, readVarsFile(f, await readConfigText(f, HINT)));
  return merged;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const names = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of names) {
    if (e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile() && ["", ...YAML_EXTENSIONS].includes(path.extname(e.name).toLowerCase())) out.push(p);
  }
  return out;
}

function readVarsFile(file: string, text: string): Vars {
  if (text.trim() === "") return {};
  const { data } = parseYaml(text, file, {
    list: false,
    reason: "a vars file is a mapping of variable names to values",
    version: "1.1",
  });
  if (data === null || typeof data !== "object" || Array.isArray(data))
    throw new ConfigError(file, [{ keyPath: "", line: 1, reason: "a vars file is a mapping" }]);
  return data as Vars;
}
