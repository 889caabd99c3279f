/**
 * A change rolled across the fleet (harden, lockdown): every host planned first, all at once;
 * then, with apply, the hosts that have something to change in batches (rollout.ts), each host
 * applied, verified and, when that fails, put back by its step; after a batch with more
 * failures than --max-fail allows, the hosts left are not touched. A step says how one host
 * plans and applies; this file only orders the hosts.
 */
import { forEachLimit, hostError, HostSession, statusOf, type HostContext, type HostError } from "./host.js";
import type { RemoteClawguard, RemoteInfo } from "./remote/clawguard.js";
import { batchesOf, stopsAfter, type BatchSize } from "./rollout.js";
import type { HostRecord } from "./store.js";
import type { Target } from "./target.js";

/** One host's plan: how many changes, and the report that lists them. */
export interface StepPlan {
  changes: number;
  report: unknown;
}

/** One host's apply: whether it holds (verified), and if not, why and how it was put back. */
export interface StepApply {
  ok: boolean;
  report?: unknown;
  why?: string;
  /** The host's run id, for `fleet rollback`. */
  runId?: string;
  /** What undoing a failed apply did, or why it could not. */
  undo?: { done: boolean; problems: string[]; error?: HostError };
}

export interface Step {
  /** "harden" or "lockdown": the command the step runs on each host. */
  command: string;
  /** Plan on one host; read-only, so the host cuts it at `timeoutMs` too. */
  plan(cg: RemoteClawguard, host: string, timeoutMs: number): Promise<StepPlan>;
  /** Apply, verify and, on failure, undo on one host within `timeoutMs`. */
  apply(cg: RemoteClawguard, host: string, timeoutMs: number): Promise<StepApply>;
}

export type Outcome = "unchanged" | "planned" | "changed" | "failed" | "not-touched";

export interface RolloutResult {
  outcome?: Outcome;
  plan?: StepPlan;
  apply?: StepApply;
  clawguard?: RemoteInfo;
}

export interface RolloutHost extends HostRecord {
  result: RolloutResult;
}

export interface RolloutOptions {
  apply: boolean;
  serial: readonly BatchSize[];
  maxFail: number;
  forks: number;
  /** How long one host's apply (with its verification and undo) may take. */
  applyTimeoutMs: number;
  /** Called once every host is planned, before anything is applied. */
  onPlanned?: (hosts: readonly RolloutHost[]) => void;
  /** Called whenever a host's row changes (planned, applied, left untouched). */
  onHost?: (h: RolloutHost, index: number) => void;
}

export interface Rollout {
  hosts: RolloutHost[];
  /** Whether --max-fail stopped the rollout before every batch ran. */
  stopped: boolean;
}

export async function rollFleet(
  targets: readonly Target[],
  ctx: HostContext,
  step: Step,
  opts: RolloutOptions,
): Promise<Rollout> {
  const sessions = targets.map((t) => new HostSession(t, ctx));
  const hosts: RolloutHost[] = [];
  try {
    await forEachLimit(sessions, opts.forks, async (s, i) => {
      const started = Date.now();
      const base = { host: s.target.name, target: s.target, startedAt: new Date(started).toISOString() };
      try {
        const cg = await s.clawguard();
        const plan = await step.plan(cg, s.target.name, ctx.timeoutMs);
        const outcome: Outcome = plan.changes === 0 ? "unchanged" : opts.apply ? "not-touched" : "planned";
        hosts[i] = {
          ...base,
          status: "ok",
          result: { outcome, plan, clawguard: cg.info },
          durationMs: Date.now() - started,
        };
      } catch (e) {
        const error = hostError(e);
        const clawguard = await s.info();
        hosts[i] = {
          ...base,
          status: statusOf(error),
          error,
          result: clawguard ? { clawguard } : {},
          durationMs: Date.now() - started,
        };
      }
      opts.onHost?.(hosts[i]!, i);
    });
    opts.onPlanned?.(hosts);
    if (!opts.apply) return { hosts, stopped: false };

    const todo = hosts.map((h, i) => ({ h, i })).filter(({ h }) => h.result.outcome === "not-touched");
    let failed = 0;
    let stopped = false;
    for (const batch of batchesOf(todo, opts.serial)) {
      if (stopsAfter(failed, opts.maxFail)) {
        stopped = true;
        break;
      }
      const outcomes = await forEachLimit(batch, opts.forks, async ({ h, i }) => {
        const started = Date.now();
        let apply: StepApply;
        try {
          apply = await step.apply(await sessions[i]!.clawguard(), h.host, opts.applyTimeoutMs);
        } catch (e) {
          const error = hostError(e);
          apply = { ok: false, why: `${error.message} (${error.code})` };
          h.error = error;
        }
        h.result = { ...h.result, apply, outcome: apply.ok ? "changed" : "failed" };
        h.durationMs += Date.now() - started;
        opts.onHost?.(h, i);
        return apply.ok;
      });
      failed += outcomes.filter((ok) => !ok).length;
    }
    return { hosts, stopped };
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}
