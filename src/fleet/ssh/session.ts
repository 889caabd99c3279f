/**
 * Commands on remote hosts through the system's ssh client, one multiplexed connection per host
 * (the first command opens it, the rest reuse it), with control sockets in a directory only this
 * user can enter. A command that outlives its time is cut, with its process group; ssh's own
 * failures become errors that say what happened (see classify.ts).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ClawguardError } from "../../errors.js";
import { shQuote } from "../shell.js";
import type { Target } from "../target.js";
import { controlArgv, sshArgv, type SshSettings } from "./argv.js";
import { classifySshFailure } from "./classify.js";

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  input?: Buffer;
  timeoutMs: number;
}

/** A POSIX shell on one host: what the rest of fleet needs of a connection. */
export interface RemoteShell {
  readonly target: Target;
  /** Run `script` with sh; a failure to reach the host or a command cut at its time throws. */
  run(script: string, opts: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

/** Opens shells to hosts; closing it closes every one. */
export interface Connector {
  shell(target: Target): RemoteShell;
  close(): Promise<void>;
}

const MAX_STDOUT = 64 * 1024 * 1024;
const MAX_STDERR = 1024 * 1024;
/** A Unix socket's path holds at most 107 bytes; %C is 40 of them. */
const MAX_CONTROL_DIR = 60;

interface Spawned extends RunResult {
  timedOut: boolean;
  overflow: boolean;
}

function runArgv(argv: string[], input: Buffer | undefined, timeoutMs: number): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a cut takes a ProxyJump's ssh down with it.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], detached: true });
    const out: Buffer[] = [];
    let outLen = 0;
    let err = "";
    let timedOut = false;
    let overflow = false;
    const kill = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      outLen += b.length;
      if (outLen > MAX_STDOUT) {
        overflow = true;
        kill();
      } else out.push(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      err = (err + b.toString("utf8")).slice(-MAX_STDERR);
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new ClawguardError("CG_SSH_FAILED", `cannot run ${argv[0]}: ${e.message}`, { cause: e }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 + 9 : 255),
        stdout: Buffer.concat(out),
        stderr: err,
        timedOut,
        overflow,
      });
    });
    child.stdin.on("error", () => {
      // A command may exit before reading its input; its exit code says what happened.
    });
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

class SshShell implements RemoteShell {
  constructor(
    readonly target: Target,
    private readonly settings: SshSettings,
  ) {}

  async run(script: string, opts: RunOptions): Promise<RunResult> {
    const t = this.target;
    const r = await runArgv(
      sshArgv(t, this.settings, `sh -c ${shQuote(script)}`),
      opts.input,
      opts.timeoutMs,
    );
    if (r.timedOut)
      throw new ClawguardError(
        "CG_HOST_TIMEOUT",
        `no answer within ${Math.round(opts.timeoutMs / 1000)} s: cut`,
        {
          where: t.name,
          hint: "raise --timeout if the host is only slow; otherwise log in and see what hangs",
        },
      );
    if (r.overflow)
      throw new ClawguardError("CG_REMOTE_FAILED", `the host sent more than ${MAX_STDOUT} bytes: cut`, {
        where: t.name,
      });
    if (r.code === 255) throw classifySshFailure(t.name, t.address, r.stderr);
    return r;
  }

  async close(): Promise<void> {
    await runArgv(controlArgv(this.target, this.settings, "exit"), undefined, 5000).catch(() => undefined);
  }
}

export class SshConnector implements Connector {
  private readonly shells: SshShell[] = [];

  private constructor(private readonly settings: SshSettings) {}

  static async create(settings: Omit<SshSettings, "controlDir">): Promise<SshConnector> {
    let base = tmpdir();
    if (base.length > MAX_CONTROL_DIR - 20) base = "/tmp";
    // mkdtemp makes it 0700: another user cannot reach the sockets, which would let them run
    // commands on the hosts as us.
    const controlDir = await mkdtemp(path.join(base, "cg-ssh-"));
    return new SshConnector({ ...settings, controlDir });
  }

  shell(target: Target): RemoteShell {
    const s = new SshShell(target, this.settings);
    this.shells.push(s);
    return s;
  }

  async close(): Promise<void> {
    await Promise.all(this.shells.map((s) => s.close()));
    await rm(this.settings.controlDir, { recursive: true, force: true });
  }
}
