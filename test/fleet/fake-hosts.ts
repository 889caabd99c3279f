/**
 * Hosts that answer like servers with clawguard on them, in memory: the connector hands out
 * shells that answer the probe and run scripted `clawguard` commands, and records every command
 * line, so tests see what fleet asked of each host and in which order.
 */
import { ClawguardError } from "../../src/errors.js";
import type { HostContext } from "../../src/fleet/host.js";
import { PROBE_SCRIPT } from "../../src/fleet/remote/probe.js";
import { shlexSplit } from "../../src/fleet/shell.js";
import type { Connector, RemoteShell, RunOptions, RunResult } from "../../src/fleet/ssh/session.js";
import type { Target } from "../../src/fleet/target.js";

export interface FakeHost {
  /** What the probe prints (default: root, node 20, clawguard 0.1.0 installed). */
  probe?: string;
  /** Thrown by every command, as the real shell throws ssh's failures. */
  fails?: ClawguardError;
  /** Answers `clawguard ARGS`; `input` is what was sent on stdin. */
  clawguard?: (
    args: string[],
    input: string | undefined,
  ) => { code: number; stdout: unknown; stderr?: string };
}

export const ROOT_PROBE =
  "uid=0\nnode=/usr/bin/node\nnode_version=20.19.2\nclawguard=/usr/local/bin/clawguard\nclawguard_version=0.1.0\ntimeout=yes\ntar=yes\nroot_uid=0\n";

export interface Call {
  host: string;
  /** The command line as the host's shell would run it. */
  argv: string[];
  at: number;
}

export class FakeConnector implements Connector {
  readonly calls: Call[] = [];
  closed = 0;

  constructor(readonly hosts: Record<string, FakeHost>) {}

  shell(target: Target): RemoteShell {
    return {
      target,
      run: (script, opts) => this.answer(target, script, opts),
      close: async () => {
        this.closed++;
      },
    };
  }

  private async answer(target: Target, script: string, opts: RunOptions): Promise<RunResult> {
    const host = this.hosts[target.name] ?? {};
    await new Promise((r) => setImmediate(r));
    if (host.fails) throw host.fails;
    if (script === PROBE_SCRIPT)
      return { code: 0, stdout: Buffer.from(host.probe ?? ROOT_PROBE), stderr: "" };
    const argv = shlexSplit(script.replace(/^exec /, ""));
    this.calls.push({ host: target.name, argv, at: this.calls.length });
    if (argv.includes("sh") && script.includes("tar -xzf"))
      return { code: 0, stdout: Buffer.from("/var/tmp/clawguard-fleet.AbCd1234\n"), stderr: "" };
    if (argv.includes("rm")) return { code: 0, stdout: Buffer.alloc(0), stderr: "" };
    const at = argv.findIndex((a) => a.endsWith("clawguard") || a.endsWith("clawguard.js"));
    const r = host.clawguard?.(argv.slice(at + 1), opts.input?.toString("utf8")) ?? { code: 2, stdout: "" };
    const out = typeof r.stdout === "string" ? r.stdout : JSON.stringify(r.stdout);
    return { code: r.code, stdout: Buffer.from(out), stderr: r.stderr ?? "" };
  }

  async close(): Promise<void> {}

  /** The clawguard subcommands `host` was asked to run, e.g. ["harden --json", "harden --apply"]. */
  commands(host: string): string[] {
    return this.calls
      .filter((c) => c.host === host)
      .map((c) => {
        const at = c.argv.findIndex((a) => a.endsWith("clawguard") || a.endsWith("clawguard.js"));
        return c.argv
          .slice(at + 1)
          .filter((a) => a !== "--json" && a !== "--profile" && a !== "/dev/stdin")
          .slice(0, 2)
          .join(" ");
      });
  }
}

export function context(connector: Connector, overrides: Partial<HostContext> = {}): HostContext {
  return {
    connector,
    version: "0.1.0",
    bundle: async () => {
      throw new Error("no bundle in this test");
    },
    forceCopy: false,
    timeoutMs: 10_000,
    ...overrides,
  };
}

export function target(name: string): Target {
  return { name, address: `${name}.lab`, sshArgs: [], become: true };
}

/** A harden that plans `changes` changes and, applied, passes its own verification or not. */
export function hardenHost(name: string, changes: number, verifies = true): FakeHost["clawguard"] {
  const runId = `run-${name}`;
  const plan = {
    schema: "clawguard.harden/v1",
    applied: false,
    changes: Array.from({ length: changes }, (_, i) => ({
      kind: "command",
      action: `step ${i + 1}`,
      fixes: [],
    })),
    blocked: [],
    before: { pass: 1, fail: changes, warn: 0, skip: 0, error: 0 },
  };
  return (args) => {
    if (args[0] === "rollback")
      return { code: 0, stdout: { schema: "clawguard.rollback/v1", runId: args[1], problems: [] } };
    if (args[0] !== "harden") return { code: 2, stdout: "" };
    if (!args.includes("--apply")) return { code: 0, stdout: plan };
    if (verifies) return { code: 0, stdout: { ...plan, applied: true, runId } };
    return {
      code: 1,
      stdout: {
        ...plan,
        applied: true,
        runId,
        health: { ok: false, detail: "after 20 s: connection refused" },
        error: "the gateway did not answer http://127.0.0.1:18789/healthz under its new unit; put back",
      },
    };
  };
}
