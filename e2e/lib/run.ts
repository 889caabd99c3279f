import { spawn } from "node:child_process";

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CmdOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Throw when the exit code is not 0 (default true). */
  check?: boolean;
}

/** A command failed: the message carries the command line, exit code and its stderr tail. */
export class CmdError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: CmdResult,
    why = `exited ${result.code}`,
  ) {
    super(`${argv.join(" ")}: ${why}\n${tail(result.stderr || result.stdout)}`);
  }
}

function tail(s: string, lines = 30): string {
  return s.trimEnd().split("\n").slice(-lines).join("\n");
}

/** Run argv[0] with the rest as arguments (no shell), collecting output. */
export function cmd(argv: string[], opts: CmdOptions = {}): Promise<CmdResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error("cmd: empty argv");
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, opts.timeoutMs);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")}: cannot start: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = {
        code: code ?? 128 + (signal ? 9 : 0),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      };
      if (timedOut) reject(new CmdError(argv, result, `killed after ${opts.timeoutMs} ms`));
      else if (result.code !== 0 && opts.check !== false) reject(new CmdError(argv, result));
      else resolve(result);
    });
    child.stdin.on("error", () => {
      // The command may exit without reading its input; its exit code tells what happened.
    });
    child.stdin.end(opts.input ?? "");
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export const isRoot = process.geteuid?.() === 0;
