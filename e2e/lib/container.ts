import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { createNetwork, destroyNetwork, type TestNetwork } from "./netns.js";
import { ensureRootfs } from "./rootfs.js";
import { cmd, CmdError, isAlive, sleep, type CmdOptions, type CmdResult } from "./run.js";
import { generateKey } from "./ssh.js";

/** Per-test working copies: overlay upper dirs, merged roots, logs, keys. */
export const RUN_DIR = "/var/tmp/clawguard-e2e";

const CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** nspawn's exit code when the container asked to reboot. */
const EXIT_REBOOT = 133;

export interface BootOptions {
  /** Short tag for names (netns, machine, run dir); a random suffix keeps parallel runs apart. */
  tag?: string;
  log?: (s: string) => void;
  /** A network made by the caller (a Topology), which it also removes; by default one of its own. */
  network?: TestNetwork;
  /** More systemd-nspawn arguments, e.g. --bind=/dev/net/tun for WireGuard in user space. */
  nspawnArgs?: string[];
  /** Runs on the container's fresh root before its first boot (install a package, seed cloud-init). */
  prepare?: (root: string) => Promise<void>;
  /** How long the first boot may take (a cloud-init first boot installs and configures). */
  bootTimeoutMs?: number;
}

export interface ExecOptions extends Omit<CmdOptions, "env" | "cwd"> {
  env?: Record<string, string>;
}

interface RunRecord {
  owner: number;
  nspawn?: number;
  init?: number;
  netns: string[];
  mounted: boolean;
}

/**
 * A Debian 12 booted under systemd-nspawn with systemd as PID 1, on its own copy of the cached
 * root and in its own network namespace. Everything it creates is removed by `destroy()`, which
 * is safe to call twice and after a failed boot; a process exit removes what is left, and the
 * next boot removes what a killed run left behind.
 */
export class Container {
  /** Host path of the container's / (writes here are seen inside). */
  readonly root: string;
  /** ssh private key whose public half is in the container's /root/.ssh/authorized_keys. */
  readonly sshKey: string;
  readonly logFile: string;
  private nspawnPid = 0;
  private nspawnExit: Promise<number | null> = Promise.resolve(null);
  private initPid = 0;
  private destroyed = false;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly net: TestNetwork,
    private readonly mounted: boolean,
    private readonly log: (s: string) => void,
    private readonly nspawnArgs: string[] = [],
    /** The namespaces this container made, and removes. */
    readonly ownNetns: string[] = [],
  ) {
    this.root = path.join(dir, "root");
    this.sshKey = path.join(dir, "id_ed25519");
    this.logFile = path.join(dir, "nspawn.log");
  }

  /** IPv4 address of the container on the test network. */
  get address(): string {
    return this.net.containerAddr;
  }

  /** PID (on this machine) of the container's systemd. */
  get pid(): number {
    if (!this.initPid) throw new Error(`container ${this.name} is not running`);
    return this.initPid;
  }

  get running(): boolean {
    return this.nspawnPid > 0 && isAlive(this.nspawnPid);
  }

  /** Copy the cached root, make its network, boot it and wait until systemd says it is up. */
  static async boot(opts: BootOptions = {}): Promise<Container> {
    const log = opts.log ?? ((s: string) => console.log(`[e2e] ${s}`));
    await sweepStale(log);
    const lower = await ensureRootfs(log);
    const tag =
      (opts.tag ?? "ct")
        .replace(/[^a-z0-9]/gi, "")
        .slice(0, 8)
        .toLowerCase() || "ct";
    const name = `cg-${tag}-${randomBytes(3).toString("hex")}`;
    const dir = path.join(RUN_DIR, name);
    mkdirSync(dir, { recursive: true });
    const ownNetns = opts.network ? [] : [name, `${name}-peer`];
    const record: RunRecord = { owner: process.pid, netns: ownNetns, mounted: false };
    writeRecord(dir, record);
    let ct: Container | undefined;
    try {
      record.mounted = await pristineCopy(lower, dir);
      writeRecord(dir, record);
      if (opts.prepare) await opts.prepare(path.join(dir, "root"));
      const net = opts.network ?? (await createNetwork(name));
      ct = new Container(name, dir, net, record.mounted, log, opts.nspawnArgs ?? [], ownNetns);
      live.add(ct);
      await generateKey(ct.sshKey);
      ct.authorize(readFileSync(`${ct.sshKey}.pub`, "utf8"));
      await ct.start();
      await ct.waitRunning(opts.bootTimeoutMs);
      return ct;
    } catch (e) {
      if (ct) {
        await ct.destroy();
      } else {
        await cleanupRun(dir, record);
      }
      throw e;
    }
  }

  private authorize(pubkey: string): void {
    const sshDir = path.join(this.root, "root/.ssh");
    mkdirSync(sshDir, { recursive: true, mode: 0o700 });
    chmodSync(sshDir, 0o700);
    writeFileSync(path.join(sshDir, "authorized_keys"), pubkey, { mode: 0o600 });
  }

  private async start(): Promise<void> {
    const out = openSync(this.logFile, "a");
    const child = spawn(
      "systemd-nspawn",
      [
        "-D",
        this.root,
        "--boot",
        "--register=no",
        "--keep-unit",
        "--private-network",
        `--network-namespace-path=/run/netns/${this.net.containerNs}`,
        ...this.nspawnArgs,
        "-M",
        this.name,
      ],
      {
        // detached: its own session, so a signal to the test's process group does not hit it first.
        detached: true,
        stdio: ["ignore", out, out],
        // A stock Debian 12 keeps /tmp on the root filesystem; nspawn would otherwise mount a
        // tmpfs there, hiding what fstab does at boot.
        env: { ...process.env, SYSTEMD_NSPAWN_TMPFS_TMP: "0" },
      },
    );
    closeSync(out);
    if (!child.pid) throw new Error(`systemd-nspawn did not start; see ${this.logFile}`);
    child.unref();
    this.nspawnPid = child.pid;
    this.initPid = 0;
    this.nspawnExit = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    const rec = readRecord(this.dir);
    if (rec) writeRecord(this.dir, { ...rec, nspawn: child.pid });
    this.initPid = await this.findInit();
    if (rec) writeRecord(this.dir, { ...rec, nspawn: child.pid, init: this.initPid });
  }

  /** systemd-nspawn's child whose PID in its own namespace is 1. */
  private async findInit(): Promise<number> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (!isAlive(this.nspawnPid)) break;
      const children = readFileSafe(`/proc/${this.nspawnPid}/task/${this.nspawnPid}/children`)
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      for (const c of children) {
        const nspid = /^NSpid:\s+(.*)$/m
          .exec(readFileSafe(`/proc/${c}/status`))?.[1]
          ?.trim()
          .split(/\s+/);
        if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === "1") return c;
      }
      await sleep(100);
    }
    throw new Error(`container ${this.name}: no init process appeared\n${this.logTail()}`);
  }

  logTail(lines = 40): string {
    return `--- ${this.logFile} (last ${lines} lines) ---\n${readFileSafe(this.logFile)
      .trimEnd()
      .split("\n")
      .slice(-lines)
      .join("\n")}`;
  }

  /**
   * Run a command as root inside the container (all its namespaces, its root, a clean
   * environment). A string runs through `sh -c`; an array runs as is.
   */
  exec(command: string | string[], opts: ExecOptions = {}): Promise<CmdResult> {
    const argv = typeof command === "string" ? ["sh", "-c", command] : command;
    const env = { PATH: CONTAINER_PATH, HOME: "/root", LANG: "C.UTF-8", TERM: "dumb", ...opts.env };
    return cmd(
      [
        "nsenter",
        "-t",
        String(this.pid),
        "-a",
        "--",
        "/usr/bin/env",
        "-i",
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ...argv,
      ],
      { input: opts.input, timeoutMs: opts.timeoutMs ?? 300_000, check: opts.check },
    );
  }

  /** Install packages from the pre-downloaded .debs; fails rather than reaching for a mirror. */
  async aptInstall(...packages: string[]): Promise<CmdResult> {
    return this.aptGet(packages);
  }

  /**
   * The same without what they only recommend: wireguard-tools recommends a kernel with the
   * module, and a container has no kernel of its own to build an initramfs for.
   */
  async aptInstallNoRecommends(...packages: string[]): Promise<CmdResult> {
    return this.aptGet(["--no-install-recommends", ...packages]);
  }

  private async aptGet(packages: string[]): Promise<CmdResult> {
    return this.exec(
      [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-download",
        "-o",
        "DPkg::Lock::Timeout=120",
        // Skipping fsync per file: a test container does not survive a power cut anyway.
        "-o",
        "DPkg::Options::=--force-unsafe-io",
        ...packages,
      ],
      { env: { DEBIAN_FRONTEND: "noninteractive" }, timeoutMs: 600_000 },
    );
  }

  /**
   * Wait for boot to finish. "degraded" is accepted (a container lacks some hardware units),
   * but its failed units are printed; anything else throws with the units and the boot log.
   */
  async waitRunning(timeoutMs = 180_000): Promise<"running" | "degraded"> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`container ${this.name} exited while booting\n${this.logTail()}`);
      const r = await this.exec(["systemctl", "is-system-running", "--wait"], {
        check: false,
        timeoutMs: Math.max(1000, deadline - Date.now()),
      }).catch((e: unknown) => {
        if (e instanceof CmdError) return e.result;
        throw e;
      });
      const state = r.stdout.trim();
      last = state || r.stderr.trim();
      if (state === "running") return "running";
      if (state === "degraded") {
        this.log(`${this.name} is degraded; failed units:\n${await this.failedUnits()}`);
        return "degraded";
      }
      // Before systemd opens its private socket, systemctl cannot connect: ask again.
      if (state === "" || state === "offline" || state === "initializing" || state === "starting") {
        await sleep(300);
        continue;
      }
      break;
    }
    throw new Error(
      `container ${this.name} did not finish booting (state: ${last || "none"}); failed units:\n` +
        `${await this.failedUnits()}\n${this.logTail()}`,
    );
  }

  async failedUnits(): Promise<string> {
    const r = await this.exec(["systemctl", "--failed", "--no-legend", "--plain"], { check: false });
    return r.stdout.trim() || "(none)";
  }

  /** Ask systemd inside to power off; resolves with nspawn's exit code once it is gone. */
  async poweroff(timeoutMs = 60_000): Promise<number | null> {
    if (!this.running) return this.nspawnExit;
    await this.exec(["systemctl", "poweroff", "--no-block"], { check: false });
    return this.waitExit(timeoutMs);
  }

  /**
   * Reboot from inside (`systemctl reboot`) and wait until the system is up again. nspawn exits
   * with 133 on a reboot request; booting again on the same root and network is what a restart
   * loop would do, and what a VPS does.
   */
  async reboot(timeoutMs = 60_000): Promise<void> {
    await this.exec(["systemctl", "reboot", "--no-block"], { check: false });
    const code = await this.waitExit(timeoutMs);
    if (code !== EXIT_REBOOT) {
      throw new Error(
        `container ${this.name}: expected reboot exit ${EXIT_REBOOT}, got ${code}\n${this.logTail()}`,
      );
    }
    await this.start();
    await this.waitRunning();
  }

  private async waitExit(timeoutMs: number): Promise<number | null> {
    const timeout = sleep(timeoutMs).then(() => "timeout" as const);
    const r = await Promise.race([this.nspawnExit, timeout]);
    if (r === "timeout") {
      throw new Error(`container ${this.name} did not stop within ${timeoutMs} ms\n${this.logTail()}`);
    }
    this.initPid = 0;
    return r;
  }

  /** Stop the container if running, remove its copy of the root and its network. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    if (this.running) {
      // nspawn turns SIGTERM into an orderly shutdown of the container's systemd.
      process.kill(this.nspawnPid, "SIGTERM");
      const stopped = await Promise.race([this.nspawnExit.then(() => true), sleep(20_000).then(() => false)]);
      if (!stopped) killHard(this.nspawnPid, this.initPid);
    }
    await cleanupRun(this.dir, {
      owner: process.pid,
      netns: this.ownNetns,
      mounted: this.mounted,
    });
  }
}

/** Containers of this process that are not destroyed yet. */
const live = new Set<Container>();

function cleanupSync(): void {
  // Last resort when a run is interrupted before afterAll: synchronous, best effort.
  for (const ct of live) {
    const rec = readRecord(ct.dir);
    killHard(rec?.nspawn ?? 0, rec?.init ?? 0);
    try {
      execFileSync("umount", ["-l", ct.root], { stdio: "ignore" });
    } catch {
      // Not mounted (a plain copy) or already gone.
    }
    for (const ns of ct.ownNetns) {
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        // Already deleted.
      }
    }
    rmSync(ct.dir, { recursive: true, force: true });
  }
  live.clear();
}

process.once("exit", cleanupSync);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(sig, () => {
    cleanupSync();
    // The handler is gone now, so this ends the process the way the signal would have.
    process.kill(process.pid, sig);
  });
}

function killHard(nspawn: number, init: number): void {
  // Killing a PID namespace's init kills every process in it.
  for (const pid of [init, nspawn]) {
    if (pid > 0 && isAlive(pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // It exited between the check and the kill.
      }
    }
  }
}

/**
 * Give each test its own root: an overlay over the cached root (instant, nothing copied), or a
 * full copy where overlayfs cannot be mounted. Returns whether it is a mount.
 */
async function pristineCopy(lower: string, dir: string): Promise<boolean> {
  const root = path.join(dir, "root");
  for (const d of ["root", "upper", "work"]) mkdirSync(path.join(dir, d), { recursive: true });
  const mount = await cmd(
    [
      "mount",
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${lower},upperdir=${path.join(dir, "upper")},workdir=${path.join(dir, "work")}`,
      root,
    ],
    { check: false },
  );
  if (mount.code === 0) return true;
  rmSync(root, { recursive: true, force: true });
  await cmd(["cp", "-a", "--reflink=auto", lower, root]);
  return false;
}

async function cleanupRun(dir: string, rec: RunRecord): Promise<void> {
  const root = path.join(dir, "root");
  if (rec.mounted || isMountPoint(root)) {
    // A process that just exited may still pin the mount for a moment.
    for (let i = 0; i < 20 && isMountPoint(root); i++) {
      const r = await cmd(["umount", root], { check: false });
      if (r.code !== 0) await sleep(250);
    }
    if (isMountPoint(root)) await cmd(["umount", "-l", root], { check: false });
  }
  if (rec.netns.length > 0)
    await destroyNetwork({ containerNs: rec.netns[0] ?? "", peerNs: rec.netns[1] ?? "" });
  // Never recurse into a root that is still mounted: that would delete the cached lower layer.
  if (!isMountPoint(root)) rmSync(dir, { recursive: true, force: true });
}

function isMountPoint(p: string): boolean {
  const target = path.resolve(p);
  return readFileSafe("/proc/self/mountinfo")
    .split("\n")
    .some((l) => l.split(" ")[4] === target);
}

/** Remove what runs that died without cleaning up left behind (their owner pid is gone). */
async function sweepStale(log: (s: string) => void): Promise<void> {
  if (!existsSync(RUN_DIR)) return;
  for (const name of readdirSync(RUN_DIR)) {
    const dir = path.join(RUN_DIR, name);
    const rec = readRecord(dir);
    if (!rec || isAlive(rec.owner)) continue;
    log(`removing ${dir}, left by a run (pid ${rec.owner}) that did not clean up`);
    killHard(rec.nspawn ?? 0, rec.init ?? 0);
    await cleanupRun(dir, rec);
  }
}

function writeRecord(dir: string, rec: RunRecord): void {
  writeFileSync(path.join(dir, "run.json"), JSON.stringify(rec) + "\n");
}

function readRecord(dir: string): RunRecord | undefined {
  const text = readFileSafe(path.join(dir, "run.json"));
  if (!text) return undefined;
  try {
    return JSON.parse(text) as RunRecord;
  } catch {
    return undefined;
  }
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}
