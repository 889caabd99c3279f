/**
 * `fleet lockdown`: each host's own `clawguard lockdown` with the shield's address. The plan is
 * `lockdown --shield S --json`; apply writes and loads the rules (`--apply`), then the host probes
 * for itself (`--verify`: direct connections and DNS must fail, the shield must answer). When
 * either fails, the host rolls that run back (`clawguard rollback RUN`; `lockdown rollback` on a
 * clawguard that does not name its lockdown runs), so the host keeps its network.
 */
import { undoRun } from "./harden.js";
import { hostError } from "./host.js";
import type { RemoteClawguard } from "./remote/clawguard.js";
import {
  lockdownPlanSchema,
  lockdownStepsSchema,
  lockdownVerifySchema,
  parseReport,
  type LockdownPlan,
} from "./reports.js";
import type { Step, StepApply } from "./rolling.js";

/** Files the plan would write or change, and links it would make: what "changes" means here. */
export function lockdownChanges(plan: LockdownPlan): number {
  return (
    plan.files.filter((f) => f.diff !== "").length + plan.links.filter((l) => l.before !== l.target).length
  );
}

/** `lockdown rollback` on the host: what it could not put back, or why it did not run. */
export async function undoLockdown(
  cg: RemoteClawguard,
  host: string,
  timeoutMs: number,
): Promise<NonNullable<StepApply["undo"]>> {
  try {
    const r = await cg.run(["lockdown", "rollback", "--json"], { timeoutMs, cutOnHost: false });
    const res = parseReport(host, "lockdown rollback --json", r, lockdownStepsSchema, [0, 2]);
    return { done: (res.problems ?? []).length === 0, problems: res.problems ?? [] };
  } catch (e) {
    return { done: false, problems: [], error: hostError(e) };
  }
}

export function lockdownStep(shield: string): Step {
  return {
    command: "lockdown",
    async plan(cg, host, timeoutMs) {
      const r = await cg.run(["lockdown", "--shield", shield, "--json"], { timeoutMs, cutOnHost: true });
      const report = parseReport(host, "lockdown --json", r, lockdownPlanSchema, [0]);
      return { changes: lockdownChanges(report), report };
    },
    async apply(cg, host, timeoutMs) {
      const applied = await cg.run(["lockdown", "--shield", shield, "--apply", "--json"], {
        timeoutMs,
        cutOnHost: false,
      });
      const report = parseReport(host, "lockdown --apply --json", applied, lockdownStepsSchema, [0, 2]);
      const failedStep = (report.steps ?? []).find((s) => !s.ok);
      let why =
        applied.code !== 0 ? `lockdown --apply failed${failedStep ? ` at: ${failedStep.command}` : ""}` : "";
      let verify: unknown;
      if (!why) {
        const v = await cg.run(["lockdown", "--verify", "--shield", shield, "--json"], {
          timeoutMs,
          cutOnHost: true,
        });
        const res = parseReport(host, "lockdown --verify --json", v, lockdownVerifySchema, [0, 1]);
        verify = res;
        const leak = res.probes.find((p) => !p.held);
        if (!res.ok)
          why = `lockdown does not hold: ${leak ? `${leak.id} ${leak.target}: ${leak.outcome}` : "verify failed"}`;
      }
      const runId = report.runId;
      if (!why) return { ok: true, report: { apply: report, verify }, runId };
      // The run this apply made, when the host names it; else every lockdown run there.
      const undo = runId
        ? await undoRun(cg, host, runId, timeoutMs)
        : await undoLockdown(cg, host, timeoutMs);
      return { ok: false, why, report: { apply: report, verify }, runId, undo };
    },
  };
}
