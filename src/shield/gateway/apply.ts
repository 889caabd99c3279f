/**
 * The gateway's table through the change engine, as lockdown's is: its file, unit and link,
 * the ruleset loaded into the kernel and the unit started are Change values, journaled as a run
 * of kind "gateway", so `clawguard rollback` undoes it like any run and `clawguard shield
 * gateway rollback` undoes every gateway run there is, newest first.
 */
import { applyPlan, defaultStateDir } from "../../change/apply.js";
import type { Change } from "../../change/change.js";
import { listRuns, type RunSummary } from "../../change/journal.js";
import { rollbackRun } from "../../change/rollback.js";
import { removeRuleset, type Ruleset, type Step } from "../../change/ruleset.js";
import type { Host } from "../../host/host.js";
import type { Writer } from "../../host/writer.js";
import { systemdRunning } from "../../lockdown/live.js";
import { GATEWAY_FAMILY, GATEWAY_TABLE } from "../../render/gateway-nftables.js";
import { GATEWAY_NFT, GATEWAY_UNIT, type GatewayPlan } from "./plan.js";

export const GATEWAY_RULESET: Ruleset = {
  backend: "nft",
  file: GATEWAY_NFT,
  family: GATEWAY_FAMILY,
  table: GATEWAY_TABLE,
};

export interface GatewayApplyReport {
  schema: "clawguard.shield-gateway-apply/v1";
  root: string;
  runId?: string;
  written: string[];
  unchanged: string[];
  steps: Step[];
}

export interface GatewayRollbackReport {
  schema: "clawguard.shield-gateway-rollback/v1";
  root: string;
  runs: string[];
  steps: Step[];
  problems: string[];
}

export interface GatewayLiveOptions {
  /** Load or remove the rules in this network namespace (default true). */
  live?: boolean;
  /** Run systemctl (default: only on the live root with systemd as init). */
  systemd?: boolean;
}

function owner(host: Host): { owner: string; group: string } {
  const uid = host.isRoot ? 0 : (process.getuid?.() ?? 0);
  const gid = host.isRoot ? 0 : (process.getgid?.() ?? 0);
  return { owner: String(uid), group: String(gid) };
}

export async function applyGateway(
  host: Host,
  writer: Writer,
  plan: GatewayPlan,
  opts: GatewayLiveOptions = {},
): Promise<GatewayApplyReport> {
  const who = owner(host);
  const changes: Change[] = [];
  for (const f of plan.files)
    if (f.before !== f.content)
      changes.push({ kind: "file", path: f.path, content: f.content, mode: f.mode, ...who, fixes: [] });
  for (const l of plan.links)
    if (l.before !== l.target)
      changes.push({ kind: "symlink", path: l.path, target: l.target, ...who, fixes: [] });
  // Loaded again even when the files hold: the kernel's copy may have been flushed since.
  if (opts.live !== false) changes.push({ kind: "ruleset", ruleset: GATEWAY_RULESET, fixes: [] });
  if (opts.systemd ?? systemdRunning(host.root)) {
    changes.push({
      kind: "command",
      argv: ["systemctl", "daemon-reload"],
      refresh: true,
      live: true,
      fixes: [],
    });
    changes.push({ kind: "service", unit: GATEWAY_UNIT, fixes: [] });
  }
  const report: GatewayApplyReport = {
    schema: "clawguard.shield-gateway-apply/v1",
    root: host.root,
    written: [],
    unchanged: [
      ...plan.files.filter((f) => f.before === f.content).map((f) => f.path),
      ...plan.links.filter((l) => l.before === l.target).map((l) => l.path),
    ],
    steps: [],
  };
  if (changes.length === 0) return report;
  const res = await applyPlan(host, writer, changes, {
    stateDir: defaultStateDir(host.root),
    kind: "gateway",
    about: { networks: plan.spec.networks },
  });
  report.runId = res.runId;
  report.written = res.applied.flatMap((c) => (c.kind === "file" || c.kind === "symlink" ? [c.path] : []));
  report.steps = res.steps;
  return report;
}

async function liveRuns(stateDir: string): Promise<RunSummary[]> {
  return (await listRuns(stateDir))
    .filter((r) => r.kind === "gateway" && r.begun > 0 && !r.rolledBack)
    .reverse();
}

/** Undo every gateway run, newest first; with none recorded, remove a table loaded by hand. */
export async function rollbackGateway(
  host: Host,
  writer: Writer,
  opts: GatewayLiveOptions = {},
): Promise<GatewayRollbackReport> {
  const stateDir = defaultStateDir(host.root);
  const live = opts.live !== false;
  const report: GatewayRollbackReport = {
    schema: "clawguard.shield-gateway-rollback/v1",
    root: host.root,
    runs: [],
    steps: [],
    problems: [],
  };
  const runs = await liveRuns(stateDir);
  for (const r of runs) {
    const res = await rollbackRun(host, writer, stateDir, r.id, { leaveRunning: !live });
    report.runs.push(r.id);
    report.steps.push(...res.steps);
    report.problems.push(...res.problems);
  }
  if (runs.length === 0 && live) {
    const steps = await removeRuleset(GATEWAY_RULESET);
    report.steps.push(...steps);
    for (const s of steps) if (!s.ok) report.problems.push(`${s.command}: ${s.detail ?? "failed"}`);
  }
  return report;
}
