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
  /** Each live step of the apply (rules loaded, unit started, gateway restarted). */
  steps?: ApplyReport["steps"];
  error?: string;
}

/**
 * `harden --shield` includes the agent-side lockdown. It keeps its own backups and its own
 * `clawguard lockdown rollback`, because the same lockdown is also applied alone on servers that
 * were hardened before a shield existed; harden's run journal does not own it.
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
    view.applied = report.steps.every((s) => s.ok);
    if (!view.applied)
      view.error = report.steps
        .filter((s) => !s.ok)
        .map((s) => s.detail ?? s.command)
        .join("; ");
  } catch (err) {
    view.error = err instanceof Error ? err.message : String(err);
  }
  return view;
}
