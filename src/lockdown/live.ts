import { existsSync } from "node:fs";
import { HostError } from "../host/errors.js";
import { runCommand, type RunResult } from "../host/host.js";
import { IPT_CHAIN, NFT_FAMILY, NFT_TABLE } from "../render/nftables.js";
import type { Backend } from "./plan.js";

/**
 * The running kernel's rules, in the network namespace this process runs in (whatever --root
 * says about files). Every step reports the command it ran, for the operator's output.
 */
export type Runner = (argv: string[]) => Promise<RunResult>;

export const defaultRunner: Runner = (argv) => runCommand(argv, { timeoutMs: 30_000 });

export interface Step {
  command: string;
  ok: boolean;
  detail?: string;
}

async function step(run: Runner, argv: string[]): Promise<Step & { code: number; stderr: string }> {
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

function strip(s: Step & { code: number; stderr: string }): Step {
  return { command: s.command, ok: s.ok, ...(s.detail ? { detail: s.detail } : {}) };
}

/** nft where it is installed; iptables only where it is not. */
export async function detectBackend(run: Runner = defaultRunner): Promise<Backend> {
  const s = await step(run, ["nft", "--version"]);
  return s.ok ? "nft" : "iptables";
}

export class LiveRulesError extends Error {
  constructor(
    message: string,
    readonly steps: Step[],
  ) {
    super(message);
    this.name = "LiveRulesError";
  }
}

/** Load the persisted rules (paths on this machine) into the running kernel. */
export async function loadRules(
  backend: Backend,
  files: { nft?: string; v4?: string; v6?: string },
  run: Runner = defaultRunner,
): Promise<Step[]> {
  const steps: Step[] = [];
  const must = async (argv: string[]) => {
    const s = await step(run, argv);
    steps.push(strip(s));
    if (!s.ok) throw new LiveRulesError(`${s.command} failed: ${s.detail ?? `exit ${s.code}`}`, steps);
  };
  if (backend === "nft") {
    await must(["nft", "-f", files.nft!]);
    await must(["nft", "list", "table", NFT_FAMILY, NFT_TABLE]);
    return steps;
  }
  for (const [tool, file] of [
    ["iptables", files.v4!],
    ["ip6tables", files.v6!],
  ] as const) {
    await dropJumps(run, tool, steps);
    await must([`${tool}-restore`, "--noflush", file]);
  }
  return steps;
}

async function dropJumps(run: Runner, tool: string, steps: Step[]): Promise<void> {
  // A jump left by an earlier load would run the chain twice; delete every copy.
  for (let i = 0; i < 16; i++) {
    const s = await step(run, [tool, "-D", "OUTPUT", "-j", IPT_CHAIN]);
    if (!s.ok) return;
    steps.push(strip(s));
  }
}

/** Remove the live rules; absent rules are not an error. */
export async function removeRules(backend: Backend | "both", run: Runner = defaultRunner): Promise<Step[]> {
  const steps: Step[] = [];
  if (backend === "nft" || backend === "both") {
    const s = await step(run, ["nft", "delete", "table", NFT_FAMILY, NFT_TABLE]);
    const absent = /No such file or directory|not installed/.test(s.stderr);
    if (!(backend === "both" && absent)) steps.push({ ...strip(s), ok: s.ok || absent });
  }
  if (backend === "iptables" || backend === "both") {
    for (const tool of ["iptables", "ip6tables"]) {
      await dropJumps(run, tool, steps);
      const f = await step(run, [tool, "-F", IPT_CHAIN]);
      if (!f.ok) continue; // no such chain (or no such tool): nothing loaded
      steps.push(strip(f));
      const x = await step(run, [tool, "-X", IPT_CHAIN]);
      steps.push(strip(x));
    }
  }
  return steps;
}

/** Whether the live rules are loaded in this namespace, and the command that says so. */
export async function rulesLoaded(
  run: Runner = defaultRunner,
): Promise<{ loaded: boolean; evidence: string }> {
  const nft = await step(run, ["nft", "list", "table", NFT_FAMILY, NFT_TABLE]);
  if (nft.ok) return { loaded: true, evidence: `nft list table ${NFT_FAMILY} ${NFT_TABLE}: present` };
  const ipt = await step(run, ["iptables", "-S", IPT_CHAIN]);
  if (ipt.ok) return { loaded: true, evidence: `iptables -S ${IPT_CHAIN}: present` };
  return { loaded: false, evidence: `${nft.command}: ${nft.detail ?? "absent"}` };
}

/** Bring the tunnel up from its config file (without systemd), replacing one that is up. */
export async function tunnelUp(run: Runner, conf: string): Promise<Step[]> {
  const down = await step(run, ["wg-quick", "down", conf]);
  const up = await step(run, ["wg-quick", "up", conf]);
  return [...(down.ok ? [strip(down)] : []), strip(up)];
}

/** Take the tunnel down; one that is not up is already where this wants it. */
export async function tunnelDown(run: Runner, conf: string): Promise<Step> {
  const s = await step(run, ["wg-quick", "down", conf]);
  return { ...strip(s), ok: s.ok || /is not a WireGuard interface|does not exist/.test(s.stderr) };
}

/** systemd manages this system: the live root with systemd as init. */
export function systemdRunning(root: string): boolean {
  return root === "/" && existsSync("/run/systemd/system");
}

export async function systemctl(run: Runner, args: string[]): Promise<Step> {
  return strip(await step(run, ["systemctl", ...args]));
}
