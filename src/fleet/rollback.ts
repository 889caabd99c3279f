/**
 * `fleet rollback RUN`: undo a fleet harden or lockdown run, host by host, each host through its
 * own rollback (`clawguard rollback ITS_RUN`, or `clawguard lockdown rollback` where a lockdown
 * did not name its run). Hosts the run changed are undone; a host whose failed apply was already
 * put back is left alone, one whose undo did not finish is tried again.
 */
import { ClawguardError } from "../errors.js";
import { undoRun } from "./harden.js";
import { hostError, HostSession, statusOf, type HostContext } from "./host.js";
import { undoLockdown } from "./lockdown.js";
import type { RolloutResult, StepApply } from "./rolling.js";
import type { HostRecord, RunRecord } from "./store.js";

export type UndoOutcome = "undone" | "failed" | "nothing-to-undo";

export interface UndoResult {
  outcome: UndoOutcome;
  undo?: StepApply["undo"];
  /** The host's own run that was undone (harden). */
  runId?: string;
}

export interface UndoHost extends HostRecord {
  result: UndoResult;
}

/**
 * Whether `r` left something on the host that a rollback should take away: "unknown" when the
 * apply was cut off before the host said which of its runs it made.
 */
export function needsUndo(kind: "harden" | "lockdown", r: RolloutResult | undefined): boolean | "unknown" {
  if (!r?.apply) return false;
  const left = r.outcome === "changed" || (r.outcome === "failed" && r.apply.undo?.done !== true);
  if (!left) return false;
  if (kind === "lockdown") return true;
  if (r.apply.runId !== undefined) return true;
  return r.apply.report === undefined ? "unknown" : false;
}

export async function rollbackFleet(
  run: RunRecord,
  hosts: readonly HostRecord[],
  ctx: HostContext,
  onHost: (h: UndoHost, index: number) => void,
): Promise<UndoHost[]> {
  if (run.kind !== "harden" && run.kind !== "lockdown")
    throw new ClawguardError(
      "CG_RUN_NOT_FOUND",
      `run ${run.id} is a fleet ${run.kind}: only harden and lockdown runs are undone`,
      {
        hint: "clawguard fleet history lists the runs",
      },
    );
  const out: UndoHost[] = [];
  const kind = run.kind;
  for (const [i, h] of hosts.entries()) {
    const result = h.result as RolloutResult | undefined;
    const started = Date.now();
    const base = { host: h.host, target: h.target, startedAt: new Date(started).toISOString() };
    const needed = needsUndo(kind, result);
    let row: UndoHost;
    if (needed === false)
      row = { ...base, status: "ok", result: { outcome: "nothing-to-undo" }, durationMs: 0 };
    else if (needed === "unknown")
      row = {
        ...base,
        status: "error",
        error: {
          code: "CG_REMOTE_FAILED",
          message: "the apply was cut off before the host said which run it made",
          hint: "log in, see clawguard rollback --list, and roll back the run there",
        },
        result: { outcome: "failed" },
        durationMs: 0,
      };
    else {
      const session = new HostSession(h.target, ctx);
      try {
        const cg = await session.clawguard();
        const runId = result?.apply?.runId;
        const undo =
          runId !== undefined
            ? await undoRun(cg, h.host, runId, ctx.timeoutMs)
            : await undoLockdown(cg, h.host, ctx.timeoutMs);
        row = {
          ...base,
          status: undo.error ? statusOf(undo.error) : "ok",
          ...(undo.error ? { error: undo.error } : {}),
          result: { outcome: undo.done ? "undone" : "failed", undo, ...(runId ? { runId } : {}) },
          durationMs: Date.now() - started,
        };
      } catch (e) {
        const error = hostError(e);
        row = {
          ...base,
          status: statusOf(error),
          error,
          result: { outcome: "failed" },
          durationMs: Date.now() - started,
        };
      } finally {
        await session.close();
      }
    }
    out.push(row);
    onHost(row, i);
  }
  return out;
}
