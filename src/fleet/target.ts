/**
 * How to reach each selected host, from its merged inventory vars: the address, port, user and
 * key Ansible's ssh connection would use, and extra ssh arguments. A host whose vars cannot be
 * used as they are (a template only Ansible can fill, a connection that is not ssh, a value that
 * ssh would read as an option) carries the problem instead, and becomes an error row: fleet
 * never guesses how to reach a server.
 */
import { hostVars } from "./inventory/graph.js";
import type { Inventory, Vars } from "./inventory/model.js";
import { shlexSplit } from "./shell.js";

export interface Target {
  /** The inventory's name for the host. */
  name: string;
  address: string;
  port?: number;
  user?: string;
  identityFile?: string;
  /** `ansible_ssh_common_args` and `ansible_ssh_extra_args`, split as a shell would. */
  sshArgs: string[];
  /** False when the inventory says `ansible_become: false`: then the login must be root. */
  become: boolean;
  /** Why the vars cannot be used, naming the inventory file, line and variable. */
  problem?: string;
}

const first = (vars: Vars, ...keys: string[]): [string, unknown] | undefined => {
  for (const k of keys) if (vars[k] !== undefined && vars[k] !== null) return [k, vars[k]];
  return undefined;
};

/** Ansible's boolean(): the words it takes for yes and no. */
function truthy(v: unknown): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  const s = String(v).trim().toLowerCase();
  if (["yes", "on", "1", "true", "y", "t"].includes(s)) return true;
  if (["no", "off", "0", "false", "n", "f", ""].includes(s)) return false;
  return undefined;
}

/** Text ssh would take for an option, or that carries whitespace or control characters. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNSAFE = /^-|[\s\x00-\x1f\x7f]/;
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const CONTROL = /[\x00-\x1f\x7f]/;

export function targetFor(inv: Inventory, name: string): Target {
  const vars = hostVars(inv, name);
  const line = inv.hosts.get(name)?.line;
  const where = `${inv.file}${line !== undefined ? `:${line}` : ""}`;
  const t: Target = { name, address: name, sshArgs: [], become: true };
  const problem = (key: string, why: string): Target => ({ ...t, problem: `${where}: ${key}: ${why}` });

  for (const [k, v] of Object.entries(vars))
    if (k.startsWith("ansible_") && typeof v === "string" && v.includes("{{"))
      return problem(k, "is a Jinja template, which only Ansible can fill in; give the value itself");

  const connection = first(vars, "ansible_connection");
  if (connection && !["ssh", "smart", "paramiko"].includes(String(connection[1])))
    return problem(connection[0], `"${String(connection[1])}": clawguard fleet reaches hosts over ssh only`);

  const address = first(vars, "ansible_host", "ansible_ssh_host");
  if (address) t.address = String(address[1]);
  if (t.address === "" || UNSAFE.test(t.address))
    return problem(address?.[0] ?? "host name", `"${t.address}" is not a host name or address ssh can take`);

  const port = first(vars, "ansible_port", "ansible_ssh_port");
  if (port) {
    const n = Number(port[1]);
    if (!/^[0-9]+$/.test(String(port[1])) || n < 1 || n > 65535)
      return problem(port[0], `"${String(port[1])}" is not a port number (1-65535)`);
    t.port = n;
  }

  const user = first(vars, "ansible_user", "ansible_ssh_user");
  if (user) {
    t.user = String(user[1]);
    if (t.user === "" || UNSAFE.test(t.user) || t.user.includes("@"))
      return problem(user[0], `"${t.user}" is not a user name`);
  }

  const key = first(vars, "ansible_ssh_private_key_file", "ansible_private_key_file");
  if (key) {
    t.identityFile = String(key[1]);
    if (CONTROL.test(t.identityFile)) return problem(key[0], "holds control characters");
  }

  for (const k of ["ansible_ssh_common_args", "ansible_ssh_extra_args"]) {
    if (vars[k] === undefined || vars[k] === null) continue;
    try {
      t.sshArgs.push(...shlexSplit(String(vars[k])));
    } catch (e) {
      return problem(k, `cannot be split into arguments: ${(e as Error).message}`);
    }
  }

  const become = first(vars, "ansible_become");
  if (become) {
    const b = truthy(become[1]);
    if (b === undefined) return problem(become[0], `"${String(become[1])}" is neither true nor false`);
    t.become = b;
  }
  const method = first(vars, "ansible_become_method");
  if (method && String(method[1]) !== "sudo" && t.become)
    return problem(method[0], `"${String(method[1])}": clawguard fleet becomes root with sudo -n only`);
  const becomeUser = first(vars, "ansible_become_user");
  if (becomeUser && String(becomeUser[1]) !== "root" && t.become)
    return problem(becomeUser[0], `"${String(becomeUser[1])}": clawguard needs root on the host`);
  return t;
}

export function targetsFor(inv: Inventory, names: readonly string[]): Target[] {
  return names.map((n) => targetFor(inv, n));
}
