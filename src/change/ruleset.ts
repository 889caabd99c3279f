import { HostError } from "../host/errors.js";
import { runCommand, type RunResult } from "../host/host.js";

/**
 * A firewall ruleset kept in files and loaded into the kernel: an nft table defined by one
 * file, or an iptables/ip6tables chain restored from one file per family. Loading and removing
 * act on the network namespace this process runs in, whatever the root says about files: a
 * mounted image has no kernel of its own.
 */
export type Ruleset =
  | { backend: "nft"; file: string; family: string; table: string }
  | { backend: "iptables"; files: { 4: string; 6: string }; chain: string };

/** One command run on the live system and how it went, for the operator's output. */
export interface Step {
  command: string;
  ok: boolean;
  detail?: string;
}

export type Runner = (argv: string[]) => Promise<RunResult>;

export const defaultRunner: Runner = (argv) => runCommand(argv, { timeoutMs: 30_000 });

interface Ran extends Step {
  code: number;
  stderr: string;
}

export async function runStep(run: Runner, argv: string[]): Promise<Ran> {
  try {
    const r = await run(argv);
    const detail = (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ") || undefined;
    return {
      command: argv.join(" "),
      ok: r.code === 0,
      detail: r.code === 0 ? undefined : detail,
      code: r.code,
      stderr: r.stderr,
    };
  } catch (err) {
    const message = err instanceof HostError ? err.problem.message : String(err);
    return { command: argv.join(" "), ok: false, detail: message, code: 127, stderr: message };
  }
}

function strip(s: Ran): Step {
  return { command: s.command, ok: s.ok, ...(s.detail ? { detail: s.detail } : {}) };
}

/** A load that failed, with every step run up to the failure. */
export class RulesetError extends Error {
  constructor(
    message: string,
    readonly steps: Step[],
  ) {
    super(message);
    this.name = "RulesetError";
  }
}

const TOOLS = [
  ["iptables", 4],
  ["ip6tables", 6],
] as const;

/** Load the ruleset from `files`, its files' paths on this machine (the persisted ones, resolved in the root). */
export async function loadRuleset(
  r: Ruleset,
  files: { nft?: string; 4?: string; 6?: string },
  run: Runner = defaultRunner,
): Promise<Step[]> {
  const steps: Step[] = [];
  const must = async (argv: string[]) => {
    const s = await runStep(run, argv);
    steps.push(strip(s));
    if (!s.ok) throw new RulesetError(`${s.command} failed: ${s.detail ?? `exit ${s.code}`}`, steps);
  };
  if (r.backend === "nft") {
    await must(["nft", "-f", files.nft!]);
    await must(["nft", "list", "table", r.family, r.table]);
    return steps;
  }
  for (const [tool, family] of TOOLS) {
    await dropJumps(run, tool, r.chain, steps);
    await must([`${tool}-restore`, "--noflush", files[family]!]);
  }
  return steps;
}

async function dropJumps(run: Runner, tool: string, chain: string, steps: Step[]): Promise<void> {
  // A jump left by an earlier load would run the chain twice; delete every copy.
  for (let i = 0; i < 16; i++) {
    const s = await runStep(run, [tool, "-D", "OUTPUT", "-j", chain]);
    if (!s.ok) return;
    steps.push(strip(s));
  }
}

/** Remove the ruleset from the kernel; one that is not loaded is no error. */
export async function removeRuleset(r: Ruleset, run: Runner = defaultRunner): Promise<Step[]> {
  const steps: Step[] = [];
  if (r.backend === "nft") {
    const s = await runStep(run, ["nft", "delete", "table", r.family, r.table]);
    const absent = /No such file or directory|not installed/.test(s.stderr);
    steps.push({ ...strip(s), ok: s.ok || absent });
    return steps;
  }
  for (const [tool] of TOOLS) {
    await dropJumps(run, tool, r.chain, steps);
    const f = await runStep(run, [tool, "-F", r.chain]);
    if (!f.ok) continue; // no such chain (or no such tool): nothing loaded
    steps.push(strip(f));
    steps.push(strip(await runStep(run, [tool, "-X", r.chain])));
  }
  return steps;
}

/** Whether the ruleset is loaded now, and the command that says so. */
export async function rulesetLoaded(
  r: Ruleset,
  run: Runner = defaultRunner,
): Promise<{ loaded: boolean; evidence: string }> {
  const argv =
    r.backend === "nft" ? ["nft", "list", "table", r.family, r.table] : ["iptables", "-S", r.chain];
  const s = await runStep(run, argv);
  return { loaded: s.ok, evidence: `${s.command}: ${s.ok ? "present" : (s.detail ?? "absent")}` };
}
