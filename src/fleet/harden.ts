/**
 * `fleet harden`, one host at a time as rolling.ts orders them: the host's own `clawguard harden`
 * plans (`--json`) and applies (`--apply --json`), and its own verification (the gateway answers
 * /healthz under its new unit) decides whether the host holds. When it does not, harden has
 * already put the gateway back; fleet then rolls back the rest of that host's run, so a failed
 * host is left as it was found.
 */
import { hostError } from "./host.js";
import type { RemoteClawguard } from "./remote/clawguard.js";
import {
  hardenReportSchema,
  parseReport,
  RemoteCommandError,
  rollbackReportSchema,
  type HardenReport,
} from "./reports.js";
import type { Step, StepApply } from "./rolling.js";

export interface HardenStepOptions {
  /** The harden profile, checked here; each host reads it from its standard input. */
  profile: unknown;
  /** harden's --health-timeout, when given. */
  healthTimeoutS?: number;
}

export function hardenStep(opts: HardenStepOptions): Step {
  const health = opts.healthTimeoutS !== undefined ? ["--health-timeout", String(opts.healthTimeoutS)] : [];
  // JSON is YAML, which is what harden reads a profile as.
  const input = Buffer.from(JSON.stringify(opts.profile) + "\n");
  const profile = ["--profile", "/dev/stdin"];
  return {
    command: "harden",
    async plan(cg, host, timeoutMs) {
      const r = await cg.run(["harden", "--json", ...profile], { timeoutMs, cutOnHost: true, input });
      const report = parseReport(host, "harden --json", r, hardenReportSchema, [0, 1]);
      if (report.error) throw new RemoteCommandError(host, "harden --json", report.error);
      return { changes: report.changes.length, report };
    },
    async apply(cg, host, timeoutMs) {
      const args = ["harden", "--apply", "--json", ...profile, ...health];
      const r = await cg.run(args, { timeoutMs, cutOnHost: false, input });
      const report: HardenReport = parseReport(host, "harden --apply --json", r, hardenReportSchema, [0, 1]);
      const why = report.error ?? report.egress?.error;
      if (r.code === 0 && why === undefined) return { ok: true, report, runId: report.runId };
      const failed: StepApply = {
        ok: false,
        report,
        why: why ?? `harden exited ${r.code}`,
        runId: report.runId,
      };
      if (report.applied && report.runId) failed.undo = await undoRun(cg, host, report.runId, timeoutMs);
      return failed;
    },
  };
}

/** `clawguard rollback RUN` on the host: what it could not put back, or why it did not run. */
export async function undoRun(
  cg: RemoteClawguard,
  host: string,
  runId: string,
  timeoutMs: number,
): Promise<NonNullable<StepApply["undo"]>> {
  try {
    const r = await cg.run(["rollback", runId, "--json"], { timeoutMs, cutOnHost: false });
    const res = parseReport(host, `rollback ${runId} --json`, r, rollbackReportSchema, [0, 1]);
    return { done: res.problems.length === 0, problems: res.problems };
  } catch (e) {
    if (e instanceof RemoteCommandError && e.remoteCode === "CG_RUN_ROLLED_BACK")
      return { done: true, problems: [] };
    return { done: false, problems: [], error: hostError(e) };
  }
}
