/**
 * clawguard on one host, as root: the one installed there when its version speaks ours, else
 * this one, copied over the same connection into a fresh directory only root can read, run with
 * the host's own node, and removed when the host is done. A host without a usable node, tar or
 * root gets an error that says which.
 */
import { readFile } from "node:fs/promises";
import { ClawguardError } from "../../errors.js";
import { shQuote } from "../shell.js";
import type { RemoteShell, RunResult } from "../ssh/session.js";
import type { Bundle } from "./bundle.js";
import { compatibleVersion, nodeProblem, parseProbe, PROBE_SCRIPT, type Probe } from "./probe.js";

export interface PrepareOptions {
  /** This clawguard's version. */
  version: string;
  /** The bundle to copy, built on first use. */
  bundle: () => Promise<Bundle>;
  /** Copy this clawguard even where one is installed. */
  forceCopy: boolean;
  /** Milliseconds left for the host. */
  timeoutMs: () => number;
}

/** How clawguard ran on a host, for the report. */
export interface RemoteInfo {
  via: "installed" | "copied";
  version: string;
  path: string;
  /** Why an installed clawguard was not used. */
  note?: string;
  become: boolean;
}

const STAGE_DIR = /^\/(?:var\/tmp|tmp)\/clawguard-fleet\.[A-Za-z0-9]+$/;

const UNPACK = `set -e
d=$(mktemp -d /var/tmp/clawguard-fleet.XXXXXXXX 2>/dev/null || mktemp -d /tmp/clawguard-fleet.XXXXXXXX)
tar -xzf - -C "$d" --no-same-owner
echo "$d"`;

export class RemoteClawguard {
  private constructor(
    private readonly shell: RemoteShell,
    private readonly probe: Probe,
    private readonly command: string[],
    readonly info: RemoteInfo,
    private readonly stageDir: string | undefined,
  ) {}

  static async prepare(shell: RemoteShell, opts: PrepareOptions): Promise<RemoteClawguard> {
    const host = shell.target.name;
    const answer = await shell.run(PROBE_SCRIPT, { timeoutMs: opts.timeoutMs() });
    const probe = parseProbe(host, answer.stdout.toString("utf8"), shell.target.become);
    const installed = probe.clawguard;
    const become = probe.become.length > 0;
    if (installed && !opts.forceCopy && compatibleVersion(opts.version, installed.version))
      return new RemoteClawguard(
        shell,
        probe,
        [installed.path],
        { via: "installed", version: installed.version, path: installed.path, become },
        undefined,
      );
    const note = installed
      ? opts.forceCopy
        ? `clawguard ${installed.version} at ${installed.path} left alone (--copy)`
        : `clawguard ${installed.version || "of unknown version"} at ${installed.path} does not speak ${opts.version}`
      : undefined;
    const noNode = nodeProblem(probe);
    if (noNode)
      throw new ClawguardError("CG_REMOTE_UNSUPPORTED", `${noNode}${note ? ` (${note})` : ""}`, {
        where: host,
        hint: "install Node.js 20 or later on the host, or install clawguard there",
      });
    if (!probe.hasTar)
      throw new ClawguardError(
        "CG_REMOTE_UNSUPPORTED",
        "tar is not installed, so clawguard cannot be copied over",
        {
          where: host,
          hint: "apt-get install tar, or install clawguard on the host",
        },
      );
    const bundle = await opts.bundle();
    const unpack = await shell.run(RemoteClawguard.asRoot(probe, ["sh", "-c", UNPACK]), {
      input: await readFile(bundle.file),
      timeoutMs: opts.timeoutMs(),
    });
    const dir = unpack.stdout.toString("utf8").trim().split("\n").pop() ?? "";
    if (unpack.code !== 0 || !STAGE_DIR.test(dir))
      throw new ClawguardError(
        "CG_REMOTE_FAILED",
        `copying clawguard over failed: ${unpack.stderr.trim().split("\n").pop() || `exit ${unpack.code}`}`,
        { where: host },
      );
    const entry = `${dir}/bin/clawguard.js`;
    return new RemoteClawguard(
      shell,
      probe,
      [probe.node!.path, entry],
      { via: "copied", version: bundle.version, path: entry, note, become },
      dir,
    );
  }

  /** `argv` as one shell command run as root (through sudo -n when the login is not root). */
  private static asRoot(probe: Probe, argv: string[]): string {
    return `exec ${[...probe.become, ...argv].map(shQuote).join(" ")}`;
  }

  /**
   * Run clawguard with `args`. With `cutOnHost`, the host also ends it when the time is up (for
   * commands that only read: cutting harden midway would leave a half-made change, so it is
   * left to finish and only the connection is dropped).
   */
  async run(
    args: string[],
    opts: { timeoutMs: number; cutOnHost: boolean; input?: Buffer },
  ): Promise<RunResult> {
    const secs = Math.max(1, Math.floor(opts.timeoutMs / 1000));
    const cut = opts.cutOnHost && this.probe.hasTimeout ? ["timeout", "-k", "5", String(secs)] : [];
    const r = await this.shell.run(RemoteClawguard.asRoot(this.probe, [...cut, ...this.command, ...args]), {
      timeoutMs: opts.timeoutMs + (cut.length ? 10_000 : 0),
      input: opts.input,
    });
    // timeout(1) exits 124 when it ended the command, 137 when it had to kill it.
    if (cut.length && (r.code === 124 || r.code === 137))
      throw new ClawguardError(
        "CG_HOST_TIMEOUT",
        `clawguard ${args[0]} did not finish within ${secs} s: cut`,
        {
          where: this.shell.target.name,
          hint: "raise --timeout if the host is only slow; otherwise log in and see what hangs",
        },
      );
    return r;
  }

  /** Remove the copy, if one was made. */
  async close(): Promise<void> {
    if (!this.stageDir) return;
    await this.shell
      .run(RemoteClawguard.asRoot(this.probe, ["rm", "-rf", "--", this.stageDir]), { timeoutMs: 30_000 })
      .catch(() => undefined);
  }
}
