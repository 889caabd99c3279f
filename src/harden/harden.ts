import { runAudit, type AuditReport } from "../audit/audit.js";
import { LAYERS, type Finding } from "../checks/finding.js";
import { FactContext } from "../host/context.js";
import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { applyPlan, ApplyError, defaultStateDir } from "../change/apply.js";
import { applyEgress, planEgress, type EgressStep } from "./egress.js";
import { describeChange, type Change } from "../change/change.js";
import { gatherPlanFacts } from "./facts.js";
import type { JournalRecord } from "../change/journal.js";
import { planHarden, type Blocked } from "./plan.js";
import type { Profile } from "./profile.js";
import { settle, type SettledChange } from "./settle.js";
import { restoreGateway, waitHealthy } from "./verify.js";

export interface PlannedView {
  kind: Change["kind"];
  /** What a person would type to make the same change. */
  action: string;
  fixes: string[];
  note?: string;
  diff?: string;
  change: Change;
}

export interface HardenReport {
  schema: "clawguard.harden/v1";
  root: string;
  profile: Profile;
  applied: boolean;
  runId?: string;
  changes: PlannedView[];
  /** Commands left out because the root is not the running system. */
  deferred: PlannedView[];
  blocked: Blocked[];
  before: AuditReport["summary"];
  after?: AuditReport["summary"];
  /** Finding ids that failed before and pass after. */
  fixed?: string[];
  /** Fixable findings still failing after the run. */
  stillFailing?: Array<Pick<Finding, "id" | "title" | "status">>;
  health?: { port: number; ok: boolean; detail: string };
  /** With a shield: the agent-side lockdown (see `clawguard lockdown`). */
  egress?: EgressStep;
  error?: string;
  rollbackProblems?: string[];
}

/**
 * A real OpenClaw gateway answers /healthz after ~20 s on an idle 2-core server and took up to
 * 143 s on a loaded one (plugins, channels, its own migrations): a shorter wait would undo a
 * gateway that was about to come up.
 */
export const DEFAULT_HEALTH_TIMEOUT_S = 180;

export interface HardenOptions {
  profile: Profile;
  apply: boolean;
  stateDir?: string;
  onRecord?: (r: JournalRecord) => void;
  healthTimeoutMs?: number;
}

const SECRET_VALUE =
  /((?:token|password|passwd|secret|api_?key|key)["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,}]+)/gi;

/**
 * What a report may show of a change. A file only its owner may read holds secrets (a new
 * gateway token, API keys): its diff keeps the shape with the values masked, its content stays
 * out. Reports end up in terminals, CI logs and cloud-init's log.
 */
function view(s: SettledChange): PlannedView {
  const c = s.change;
  const secret = c.kind === "file" && (c.mode & 0o077) === 0;
  return {
    kind: c.kind,
    action: describeChange(c),
    fixes: c.fixes,
    note: c.note,
    diff: secret ? s.diff?.replace(SECRET_VALUE, '$1"<redacted>"') : s.diff,
    change: secret
      ? { ...c, content: `<${Buffer.byteLength(c.content)} bytes, not shown: only its owner may read it>` }
      : c,
  };
}

function audited(profile: Profile) {
  return LAYERS.filter((l) => !profile.skip.includes(l));
}

/** Audit, plan from the same facts, and drop what already holds. */
export async function planFor(host: Host, profile: Profile) {
  // One context: the plan works from the very facts the audit judged, each read once.
  const context = new FactContext(host);
  const [audit, facts] = await Promise.all([
    runAudit(host, { layers: audited(profile), context }),
    gatherPlanFacts(context),
  ]);
  const plan = planHarden({ profile, findings: audit.findings, facts });
  const settled = await settle(host, plan.changes);
  return { audit, plan, settled };
}

const bad = (f: Finding) => (f.status === "fail" || f.status === "warn") && f.fixable;

export async function harden(host: Host, writer: Writer, opts: HardenOptions): Promise<HardenReport> {
  const { audit, plan, settled } = await planFor(host, opts.profile);
  const report: HardenReport = {
    schema: "clawguard.harden/v1",
    root: host.root,
    profile: opts.profile,
    applied: false,
    changes: settled.map(view),
    deferred: plan.deferred.map((c) => view({ change: c })),
    blocked: plan.blocked,
    before: audit.summary,
  };
  const egress = await planEgress(host, opts.profile);
  if (egress) report.egress = egress.view;
  if (!opts.apply) return report;
  if (settled.length === 0) {
    if (egress) report.egress = await applyEgress(host, writer, egress);
    return report;
  }
  const stateDir = opts.stateDir ?? defaultStateDir(host.root);
  const changes = settled.map((s) => s.change);
  try {
    const res = await applyPlan(host, writer, changes, { stateDir, onRecord: opts.onRecord });
    report.applied = true;
    report.runId = res.runId;
    const restarts = changes.filter(
      (c): c is Extract<Change, { kind: "command" }> =>
        c.kind === "command" &&
        c.argv[0] === "systemctl" &&
        c.argv[1] === "restart" &&
        /^openclaw/.test(c.argv[2] ?? ""),
    );
    if (restarts.length && host.root === "/") {
      const port = gatewayPort(changes, opts.profile.gatewayPort);
      report.health = await waitHealthy(port, opts.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_S * 1000);
      if (!report.health.ok) {
        const problems = await restoreGateway(host, writer, stateDir, res.runId);
        report.error = `the gateway did not answer http://127.0.0.1:${port}/healthz under the new unit (${report.health.detail}); the gateway's user, state dir, unit and config were put back as they were`;
        if (problems.length) report.rollbackProblems = problems;
      }
    }
    // Lock egress down only once the gateway runs under its new unit: a failed run stays open.
    if (egress && !report.error) report.egress = await applyEgress(host, writer, egress);
  } catch (err) {
    if (!(err instanceof ApplyError)) throw err;
    report.error = err.message;
    report.runId = err.runId || undefined;
    if (err.rollbackProblems.length) report.rollbackProblems = err.rollbackProblems;
  }
  const after = await runAudit(host, { layers: audited(opts.profile) });
  report.after = after.summary;
  const nowOk = new Set(after.findings.filter((f) => f.status === "pass").map((f) => f.id));
  report.fixed = [...new Set(audit.findings.filter((f) => bad(f) && nowOk.has(f.id)).map((f) => f.id))];
  report.stillFailing = after.findings
    .filter(bad)
    .map((f) => ({ id: f.id, title: f.title, status: f.status }));
  return report;
}

function gatewayPort(changes: Change[], fallback: number): number {
  for (const c of changes) {
    if (c.kind !== "file") continue;
    const m = /--bind loopback --port (\d+)/.exec(c.content);
    if (m) return Number(m[1]);
  }
  return fallback;
}
