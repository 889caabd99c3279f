import { spawn } from "node:child_process";
import { constants as fsc, promises as fs } from "node:fs";
import path from "node:path";
import type { Problem } from "../facts/fact.js";
import type { FileStat } from "../facts/stat.js";
import { HostError, problemFromFsError } from "./errors.js";

export interface DirEntry {
  name: string;
  type: FileStat["type"];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
}

/**
 * Everything the audit knows about a system comes through a Host: files and directories read
 * relative to a root (a live system at "/", or a mounted image or fixture tree elsewhere), and
 * commands run inside that root.
 */
export interface Host {
  readonly root: string;
  /** Effective uid of this process is 0. */
  readonly isRoot: boolean;
  readFile(p: string): Promise<string>;
  readBytes(p: string): Promise<Buffer>;
  /** Follows symlinks (within the root). Null when missing; throws HostError otherwise. */
  stat(p: string): Promise<FileStat | null>;
  lstat(p: string): Promise<FileStat | null>;
  readDir(p: string): Promise<DirEntry[]>;
  /** Runs a command inside the root; throws HostError kind "unavailable" when that is impossible. */
  run(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult>;
  /** Absolute path on this machine of a path on the audited system (symlinks resolved in the root). */
  resolve(p: string): Promise<string>;
}

const MAX_LINKS = 40;

function typeOf(st: import("node:fs").Stats): FileStat["type"] {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  return "other";
}

function toStat(st: import("node:fs").Stats): FileStat {
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, type: typeOf(st) };
}

export class LocalHost implements Host {
  readonly root: string;
  readonly isRoot: boolean;

  constructor(root = "/", opts: { isRoot?: boolean } = {}) {
    this.root = path.resolve(root);
    this.isRoot = opts.isRoot ?? process.geteuid?.() === 0;
  }

  private get chrooted(): boolean {
    return this.root !== "/";
  }

  /**
   * Resolve `p` inside the root the way the audited system's kernel would: absolute symlinks
   * point into the root, `..` never climbs above it. With root "/", this is plain path handling.
   */
  async resolve(p: string, followLast = true): Promise<string> {
    if (!this.chrooted) return path.resolve("/", p);
    const parts = path.posix
      .normalize("/" + p)
      .split("/")
      .filter(Boolean);
    const done: string[] = [];
    let links = 0;
    while (parts.length > 0) {
      const part = parts.shift()!;
      if (part === "..") {
        done.pop();
        continue;
      }
      if (part === ".") continue;
      const real = path.join(this.root, ...done, part);
      const isLast = parts.length === 0;
      if (isLast && !followLast) {
        done.push(part);
        break;
      }
      let target: string | null = null;
      try {
        target = await fs.readlink(real);
      } catch {
        target = null; // not a link, or missing: keep the name and let the caller's call fail
      }
      if (target === null) {
        done.push(part);
        continue;
      }
      if (++links > MAX_LINKS)
        throw new HostError({ kind: "io", source: p, message: "too many symbolic links" });
      const rest = target.split("/").filter(Boolean);
      if (target.startsWith("/")) done.length = 0;
      parts.unshift(...rest);
    }
    return path.join(this.root, ...done);
  }

  private async wrap<T>(p: string, fn: (real: string) => Promise<T>, followLast = true): Promise<T> {
    const real = await this.resolve(p, followLast);
    try {
      return await fn(real);
    } catch (err) {
      throw new HostError(problemFromFsError(p, err));
    }
  }

  readFile(p: string): Promise<string> {
    return this.wrap(p, (real) => fs.readFile(real, "utf8"));
  }

  readBytes(p: string): Promise<Buffer> {
    return this.wrap(p, (real) => fs.readFile(real));
  }

  async stat(p: string): Promise<FileStat | null> {
    return this.statWith(p, true);
  }

  async lstat(p: string): Promise<FileStat | null> {
    return this.statWith(p, false);
  }

  private async statWith(p: string, follow: boolean): Promise<FileStat | null> {
    try {
      return await this.wrap(
        p,
        async (real) => toStat(follow ? await fs.stat(real) : await fs.lstat(real)),
        follow,
      );
    } catch (err) {
      if (err instanceof HostError && err.problem.kind === "missing") return null;
      throw err;
    }
  }

  readDir(p: string): Promise<DirEntry[]> {
    return this.wrap(p, async (real) => {
      const entries = await fs.readdir(real, { withFileTypes: true });
      return entries
        .map((e) => ({
          name: e.name,
          type: (e.isFile()
            ? "file"
            : e.isDirectory()
              ? "dir"
              : e.isSymbolicLink()
                ? "symlink"
                : "other") as FileStat["type"],
        }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    let argv: string[];
    if (!this.chrooted) {
      argv = [cmd, ...args];
    } else if (this.isRoot && (await isExecutable(path.join(this.root, "bin/sh")))) {
      argv = ["chroot", this.root, cmd, ...args];
    } else {
      throw new HostError({
        kind: "unavailable",
        source: [cmd, ...args].join(" "),
        message: `cannot run commands in ${this.root} (needs root and a system with /bin/sh)`,
      });
    }
    const result = await runCommand(argv, opts);
    if (this.chrooted && result.code === 127 && result.stderr.includes("failed to run command")) {
      throw new HostError({
        kind: "missing",
        source: [cmd, ...args].join(" "),
        message: `${cmd} is not installed`,
      });
    }
    return result;
  }
}

/** The path on this machine of `p` on the host's system, its last component not followed. */
export async function realNoFollow(host: Host, p: string): Promise<string> {
  const abs = path.posix.resolve("/", p);
  return path.join(await host.resolve(path.posix.dirname(abs)), path.posix.basename(abs));
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await fs.access(p, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Spawn argv with a timeout; never rejects for a non-zero exit, only when it cannot run. */
export function runCommand(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  const source = argv.join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, args, {
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C", ...opts.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 10_000);
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => err.push(d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const problem: Problem =
        e.code === "ENOENT"
          ? { kind: "missing", source, message: `${cmd} is not installed` }
          : { kind: "io", source, message: e.message };
      reject(new HostError(problem));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new HostError({
            kind: "timeout",
            source,
            message: `did not finish in ${opts.timeoutMs ?? 10_000} ms`,
          }),
        );
        return;
      }
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}
