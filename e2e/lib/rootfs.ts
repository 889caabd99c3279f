import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync } from "node:fs";
import path from "node:path";
import { cmd, isAlive, sleep } from "./run.js";

/** Installed by debootstrap: what a small Debian 12 VPS boots with. */
export const BASE_PACKAGES = [
  "systemd",
  "systemd-sysv",
  "dbus",
  "iproute2",
  "ca-certificates",
  "openssh-server",
  "procps",
  "iptables",
  "sudo",
] as const;

/**
 * Downloaded (with their dependencies and recommends) but not installed: tests install them
 * offline, since the container has no route to a mirror.
 */
export const OFFLINE_PACKAGES = [
  "ufw",
  "fail2ban",
  "python3-systemd",
  "unattended-upgrades",
  "nftables",
  "lynis",
  "rsyslog",
  // The fleet link: WireGuard in user space (the kernel here has no module), and a first boot
  // driven by cloud-init (whose locale module needs update-locale), fetching Node with curl.
  "wireguard-tools",
  "wireguard-go",
  "cloud-init",
  "locales",
  "curl",
  "xz-utils",
  "needrestart",
] as const;

const SUITE = "bookworm";
// Bump when the build steps change, so every machine rebuilds its cached root.
const RECIPE_VERSION = 1;

export const CACHE_DIR = "/var/cache/clawguard-e2e";

export interface Mirror {
  debian: string;
  security?: string;
}

interface SourceEntry {
  uris: string[];
  suites: string[];
}

function parseDeb822(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split("\n")) {
      if (line.startsWith("#")) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m?.[1] && m[2] !== undefined) fields.set(m[1].toLowerCase(), m[2].trim());
    }
    if (fields.get("enabled") === "no" || !(fields.get("types") ?? "").split(/\s+/).includes("deb")) continue;
    out.push({
      uris: (fields.get("uris") ?? "").split(/\s+/).filter(Boolean),
      suites: (fields.get("suites") ?? "").split(/\s+/).filter(Boolean),
    });
  }
  return out;
}

function parseOneLine(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    // deb [options] uri suite components...
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (m?.[1] && m[2]) out.push({ uris: [m[1]], suites: [m[2]] });
  }
  return out;
}

/**
 * The Debian mirror this machine's apt already uses: only Debian's mirrors are reachable from
 * here, and a configured one is known to work.
 */
export function configuredMirror(): Mirror {
  const entries: SourceEntry[] = [];
  const files: string[] = [];
  if (existsSync("/etc/apt/sources.list")) files.push("/etc/apt/sources.list");
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) for (const f of readdirSync(dir).sort()) files.push(path.join(dir, f));
  for (const f of files) {
    if (f.endsWith(".sources")) entries.push(...parseDeb822(readFileSync(f, "utf8")));
    else if (f.endsWith(".list")) entries.push(...parseOneLine(readFileSync(f, "utf8")));
  }
  const find = (suite: string) => entries.find((e) => e.suites.includes(suite))?.uris[0];
  const debian = find(SUITE);
  if (!debian) {
    throw new Error(
      `no apt source for suite "${SUITE}" in ${files.join(", ") || "/etc/apt"}: add a Debian mirror, ` +
        `e.g. "deb http://deb.debian.org/debian ${SUITE} main" to /etc/apt/sources.list`,
    );
  }
  return { debian, security: find(`${SUITE}-security`) };
}

function recipeKey(mirror: Mirror): string {
  const recipe = JSON.stringify({ RECIPE_VERSION, SUITE, BASE_PACKAGES, OFFLINE_PACKAGES, mirror });
  return createHash("sha256").update(recipe).digest("hex").slice(0, 16);
}

/** A lock directory holding its owner's pid; a dead owner's lock is taken over. */
async function withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  const owner = path.join(lockDir, "pid");
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(owner, String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number(readFileSafe(owner));
      // An empty pid file means the owner is between mkdir and write: give it a moment.
      if (pid > 0 && !isAlive(pid)) rmSync(lockDir, { recursive: true, force: true });
      else await sleep(1000);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return "";
  }
}

/** Unmount whatever an interrupted debootstrap left mounted below `dir` (/proc, /sys), then delete it. */
async function removeTree(dir: string): Promise<void> {
  const mounts = readFileSafe("/proc/self/mountinfo")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await cmd(["umount", "-l", m], { check: false });
  rmSync(dir, { recursive: true, force: true });
}

function sourcesList(mirror: Mirror): string {
  const lines = [`deb ${mirror.debian} ${SUITE} main`, `deb ${mirror.debian} ${SUITE}-updates main`];
  if (mirror.security) lines.push(`deb ${mirror.security} ${SUITE}-security main`);
  return lines.join("\n") + "\n";
}

async function build(dir: string, mirror: Mirror, log: (s: string) => void): Promise<void> {
  const started = Date.now();
  log(`building Debian ${SUITE} root in ${dir} from ${mirror.debian}`);
  await cmd(
    ["debootstrap", "--variant=minbase", `--include=${BASE_PACKAGES.join(",")}`, SUITE, dir, mirror.debian],
    { timeoutMs: 900_000 },
  );
  writeFileSync(path.join(dir, "etc/apt/sources.list"), sourcesList(mirror));
  // A stock cloud image has a hostname and an empty machine-id that systemd fills at first boot.
  writeFileSync(path.join(dir, "etc/hostname"), "debian\n");
  writeFileSync(path.join(dir, "etc/machine-id"), "");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" };
  await cmd(["chroot", dir, "apt-get", "update", "-qq"], { env, timeoutMs: 300_000 });
  await cmd(["chroot", dir, "apt-get", "install", "-y", "-qq", "--download-only", ...OFFLINE_PACKAGES], {
    env,
    timeoutMs: 600_000,
  });
  log(`built ${dir} in ${Math.round((Date.now() - started) / 1000)} s`);
}

/**
 * The cached pristine Debian 12 root, built on first use. Its key hashes the package lists and
 * mirror, so changing either builds a new one. Never boot it directly: use `pristineCopy`.
 */
export async function ensureRootfs(log: (s: string) => void = console.log): Promise<string> {
  const mirror = configuredMirror();
  const dir = path.join(CACHE_DIR, `bookworm-${recipeKey(mirror)}`);
  const done = path.join(dir, ".clawguard-complete");
  if (existsSync(done)) return dir;
  mkdirSync(CACHE_DIR, { recursive: true });
  return withLock(path.join(CACHE_DIR, ".build.lock"), async () => {
    if (existsSync(done)) return dir;
    const staging = `${dir}.building`;
    await removeTree(staging);
    await build(staging, mirror, log);
    writeFileSync(path.join(staging, ".clawguard-complete"), new Date().toISOString() + "\n");
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    return dir;
  });
}
