import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { applyLockdown, type ApplyReport } from "../lockdown/apply.js";
import { detectBackend } from "../lockdown/live.js";
import { planLockdown, type LockdownPlan } from "../lockdown/plan.js";
import { parseHostPort, pinShield } from "../lockdown/spec.js";
import type { Profile } from "./profile.js";

export interface EgressStep {
  shield: string;
  /** Files and links the lockdown writes, for the plan view. */
  paths: string[];
  ruleset: string;
  warnings: string[];
  applied: boolean;
  /** The lockdown's own run, undone by `clawguard lockdown rollback` (or `clawguard rollback RUN`). */
  runId?: string;
  /** Each live step of the apply (rules loaded, unit started, gateway restarted). */
  steps?: ApplyReport["steps"];
  error?: string;
}

/**
 * `harden --shield` includes the agent-side lockdown, as a run of its own after harden's: the
 * same lockdown is also applied alone on servers hardened before a shield existed, and
 * `clawguard lockdown rollback` undoes it either way.
 */
export async function planEgress(
  host: Host,
  profile: Profile,
): Promise<{ plan: LockdownPlan; view: EgressStep } | null> {
  if (!profile.shield || profile.skip.includes("egress")) return null;
  const shield = await pinShield(parseHostPort(profile.shield, "shield"));
  const plan = await planLockdown(host, {
    shield,
    allowOut: [],
    dns: [],
    dhcp: false,
    log: true,
    forward: true,
    backend: await detectBackend(),
  });
  return {
    plan,
    view: {
      shield: profile.shield,
      paths: [...plan.files.map((f) => f.path), ...plan.links.map((l) => l.path)],
      ruleset: plan.ruleset,
      warnings: plan.warnings,
      applied: false,
    },
  };
}

export async function applyEgress(
  host: Host,
  writer: Writer,
  planned: { plan: LockdownPlan; view: EgressStep },
) {
  const view = { ...planned.view };
  try {
    const report = await applyLockdown(host, writer, planned.plan, { live: host.root === "/" });
    view.steps = report.steps;
    view.runId = report.runId;
    view.applied = true;
  } catch (err) {
    view.error = err instanceof Error ? err.message : String(err);
  }
  return view;
}
