/**
 * One round trip to learn what a host offers: whether the login is root or sudo works without
 * a password, and, as root, where node and clawguard are and which versions. The script prints
 * `key=value` lines; parseProbe turns them into a Probe and says what is missing.
 */
import { ClawguardError } from "../../errors.js";

/**
 * As root: node and its version, clawguard and its version, timeout(1) and tar. An npm install
 * links clawguard to PACKAGE/bin/clawguard.js: its version is then read from PACKAGE/package.json
 * rather than by starting it, which costs a host most of a CPU second; anything else (a wrapper
 * script, a package.json that is not clawguard's) is asked with --version. No single quote in
 * it: it travels inside one.
 */
export const ROOT_PROBE = String.raw`n=$(command -v node) && echo "node=$n" && echo "node_version=$("$n" -p process.versions.node 2>/dev/null)"
if c=$(command -v clawguard); then
  echo "clawguard=$c"
  v=
  r=$(readlink -f "$c" 2>/dev/null)
  case $r in */bin/clawguard.js)
    p=$(dirname "$(dirname "$r")")/package.json
    if grep -q "^  \"name\": \"clawguard\",\{0,1\}$" "$p" 2>/dev/null; then
      v=$(sed -n "s/^  \"version\": \"\([0-9][^\"]*\)\",\{0,1\}$/\1/p" "$p" | head -n 1)
    fi;;
  esac
  [ -n "$v" ] || v=$("$c" --version 2>/dev/null | head -n 1)
  echo "clawguard_version=$v"
fi
command -v timeout >/dev/null 2>&1 && echo "timeout=yes"
command -v tar >/dev/null 2>&1 && echo "tar=yes"
echo "root_uid=$(id -u)"
`;

/** Runs as the login user; `sudo -n` never prompts, so a sudo that wants a password fails at once. */
export const PROBE_SCRIPT = String.raw`u=$(id -u)
echo "uid=$u"
if [ "$u" = 0 ]; then B=""
elif ! command -v sudo >/dev/null 2>&1; then echo "become=missing"; exit 0
elif e=$(sudo -n true 2>&1); then B="sudo -n"; echo "become=sudo"
else echo "become=refused"; echo "become_error=$(printf '%s' "$e" | head -n 1)"; exit 0
fi
$B sh -c '${ROOT_PROBE}'`;

export interface Probe {
  /** Commands run as root through this prefix ([] when the login is root). */
  become: string[];
  node?: { path: string; version: string };
  clawguard?: { path: string; version: string };
  hasTimeout: boolean;
  hasTar: boolean;
}

export function parseProbe(host: string, text: string, becomeAllowed: boolean): Probe {
  const kv = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0 && !kv.has(line.slice(0, eq))) kv.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const uid = kv.get("uid");
  if (uid === undefined)
    throw new ClawguardError("CG_REMOTE_FAILED", "the host's shell did not answer the probe", {
      where: host,
    });
  const become = kv.get("become");
  if (uid !== "0") {
    const why =
      become === "missing"
        ? "the login user is not root and sudo is not installed"
        : become === "refused"
          ? `the login user is not root and sudo -n refused: ${kv.get("become_error") || "no reason given"}`
          : !becomeAllowed
            ? "the login user is not root and the inventory says ansible_become: false"
            : undefined;
    if (why !== undefined)
      throw new ClawguardError("CG_BECOME_FAILED", why, {
        where: host,
        hint: "log in as root (ansible_user=root), or allow this user sudo without a password",
      });
  }
  if (kv.get("root_uid") !== "0")
    throw new ClawguardError("CG_BECOME_FAILED", "commands through sudo did not run as root", {
      where: host,
    });
  const nodePath = kv.get("node");
  const cgPath = kv.get("clawguard");
  return {
    become: uid === "0" ? [] : ["sudo", "-n"],
    node: nodePath ? { path: nodePath, version: kv.get("node_version") ?? "" } : undefined,
    clawguard: cgPath ? { path: cgPath, version: kv.get("clawguard_version") ?? "" } : undefined,
    hasTimeout: kv.get("timeout") === "yes",
    hasTar: kv.get("tar") === "yes",
  };
}

function semver(v: string): [number, number, number] | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/**
 * Whether an installed clawguard speaks what this one asks of it: the same major and minor
 * version (for 0.x, where a minor version may change a flag or a report, the same minor).
 */
export function compatibleVersion(local: string, remote: string): boolean {
  const a = semver(local);
  const b = semver(remote);
  return a !== null && b !== null && a[0] === b[0] && a[1] === b[1];
}

export const MIN_NODE_MAJOR = 20;

/** Why `probe`'s node cannot run this clawguard, or undefined when it can. */
export function nodeProblem(probe: Probe): string | undefined {
  if (!probe.node) return `no node on root's PATH; clawguard needs Node.js ${MIN_NODE_MAJOR} or later`;
  const v = semver(probe.node.version);
  if (!v) return `${probe.node.path} did not say its version`;
  if (v[0] < MIN_NODE_MAJOR)
    return `${probe.node.path} is Node.js ${probe.node.version}; clawguard needs ${MIN_NODE_MAJOR} or later`;
  return undefined;
}
