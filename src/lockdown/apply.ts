import { applyPlan, defaultStateDir } from "../change/apply.js";
import type { Change } from "../change/change.js";
import { listRuns, readRun, type RunSummary, type Saved } from "../change/journal.js";
import { rollbackRun } from "../change/rollback.js";
import type { Step } from "../change/ruleset.js";
import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { migrateLegacyState, readLegacyState } from "./legacy.js";
import { lockdownRuleset, removeAnyRules, systemdRunning } from "./live.js";
import { tunnelUnit, type LockdownPlan, type TunnelState } from "./plan.js";
import { UNIT_NAME } from "./units.js";

/**
 * Lockdown goes through the change engine: its files, its link, the rules it loads and the
 * units it restarts are Change values, applied and journaled as a run of kind "lockdown", so
 * `clawguard rollback` undoes it like a harden run and `clawguard lockdown rollback` undoes
 * every lockdown run there is, newest first.
 */

export interface LiveOptions {
  /** Load or remove the rules in this network namespace (default true). */
  live?: boolean;
  /** Run systemctl (default: only on the live root with systemd as init). */
  systemd?: boolean;
}

export interface ApplyReport {
  schema: "clawguard.lockdown-apply/v1";
  root: string;
  /** The run that holds the backups, for `clawguard rollback RUN`; none when nothing changed. */
  runId?: string;
  written: string[];
  unchanged: string[];
  steps: Step[];
  /** What the operator still has to do. */
  notes: string[];
}

export interface RollbackReport {
  schema: "clawguard.lockdown-rollback/v1";
  root: string;
  /** Runs undone, newest first. */
  runs: string[];
  restored: Array<{ path: string; to: Saved["state"] }>;
  steps: Step[];
  problems: string[];
  /** No lockdown run was recorded: only the live rules were removed. */
  nothingRecorded: boolean;
}

/** What the shield of the lockdown in force was, as the run that pinned it recorded. */
export interface RecordedShield {
  host: string;
  port: number;
  addresses: string[];
  /** The WireGuard tunnel the shield is reached through, once joined. */
  tunnel?: TunnelState;
}

/** Owner of what lockdown writes: root on a real system, whoever runs a test on a tree without root. */
function owner(host: Host): { owner: string; group: string } {
  const uid = host.isRoot ? 0 : (process.getuid?.() ?? 0);
  const gid = host.isRoot ? 0 : (process.getgid?.() ?? 0);
  return { owner: String(uid), group: String(gid) };
}

const FIXES: Record<string, string[]> = {
  ruleset: ["egress.lockdown_persisted"],
  unit: ["egress.lockdown_enabled"],
  dropin: ["egress.proxy_configured", "egress.unit_ip_filter"],
  live: ["egress.lockdown_live"],
  tunnel: ["egress.link_encrypted"],
};

/** The plan as changes: what differs on disk, then the rules and units when the system runs them. */
function lockdownChanges(
  plan: LockdownPlan,
  opts: { live: boolean; systemd: boolean; owner: { owner: string; group: string } },
): Change[] {
  const changes: Change[] = [];
  for (const f of plan.files) {
    if (f.before === f.content) continue;
    const fixes = f.path.includes(".service.d/")
      ? FIXES.dropin!
      : f.path.endsWith(UNIT_NAME)
        ? FIXES.unit!
        : f.path === plan.tunnel?.config
          ? FIXES.tunnel!
          : FIXES.ruleset!;
    changes.push({ kind: "file", path: f.path, content: f.content, mode: f.mode, ...opts.owner, fixes });
  }
  for (const l of plan.links)
    if (l.before !== l.target)
      changes.push({ kind: "symlink", path: l.path, target: l.target, ...opts.owner, fixes: FIXES.unit! });
  if (opts.live)
    changes.push({ kind: "ruleset", ruleset: lockdownRuleset(plan.backend), fixes: FIXES.live! });
  if (opts.systemd) {
    changes.push({
      kind: "command",
      argv: ["systemctl", "daemon-reload"],
      refresh: true,
      live: true,
      fixes: [],
    });
    changes.push({ kind: "service", unit: UNIT_NAME, fixes: FIXES.live! });
    // After the rules, which let its packets out; a restart picks up a new key or endpoint.
    if (plan.tunnel)
      changes.push({ kind: "service", unit: tunnelUnit(plan.tunnel.interface), fixes: FIXES.tunnel! });
    // The gateway picks up its proxy drop-in; on rollback it restarts again without it.
    for (const u of plan.gatewayUnits)
      changes.push({
        kind: "command",
        argv: ["systemctl", "try-restart", u],
        refresh: true,
        live: true,
        fixes: [],
      });
  }
  // The fleet's SSH CA as harden installs it, once the tunnel its KRL comes through is up: the
  // files always; sshd -t, the reload and the timer where systemd runs them.
  for (const c of plan.sshCa) {
    const live = (c.kind === "command" && c.live) || c.kind === "service";
    if (live && !opts.systemd) continue;
    changes.push(
      c.kind === "file" || c.kind === "mkdir" || c.kind === "symlink" ? { ...c, ...opts.owner } : c,
    );
  }
  if (!opts.systemd && opts.live && plan.tunnel) {
    // No systemd to start wg-quick@: bring the tunnel up from its file, replacing one that is up;
    // rollback takes it down while the file is still there for wg-quick to read.
    const conf = plan.tunnel.config;
    changes.push({
      kind: "command",
      argv: ["sh", "-c", 'wg-quick down "$1" 2>/dev/null; exec wg-quick up "$1"', "wg-quick", conf],
      undo: ["sh", "-c", 'wg-quick down "$1" 2>/dev/null || true', "wg-quick", conf],
      live: true,
      fixes: FIXES.tunnel!,
    });
  }
  return changes;
}

/**
 * Write the plan's files and link, then load the rules into the running kernel and, on a live
 * system, start the unit and restart the gateway. Each step is journaled with a backup of what
 * it replaces; when one fails (rules that do not load now would not load at boot either),
 * everything before it is undone.
 */
export async function applyLockdown(
  host: Host,
  writer: Writer,
  plan: LockdownPlan,
  opts: LiveOptions = {},
): Promise<ApplyReport> {
  const stateDir = defaultStateDir(host.root);
  await migrateLegacyState(host, writer, stateDir);
  const useSystemd = opts.systemd ?? systemdRunning(host.root);
  const changes = lockdownChanges(plan, {
    live: opts.live !== false,
    systemd: useSystemd,
    owner: owner(host),
  });
  const unchanged = [
    ...plan.files.filter((f) => f.before === f.content).map((f) => f.path),
    ...plan.links.filter((l) => l.before === l.target).map((l) => l.path),
  ];
  const notes = useSystemd
    ? []
    : [
        `systemd was not asked: the unit is enabled by its symlink and loads the rules at the next boot` +
          (plan.gatewayUnits.length
            ? `; restart ${plan.gatewayUnits.join(", ")} there (systemctl daemon-reload && systemctl restart ${plan.gatewayUnits.join(" ")}) to send it through the shield`
            : ""),
      ];
  const report: ApplyReport = {
    schema: "clawguard.lockdown-apply/v1",
    root: host.root,
    written: [],
    unchanged,
    steps: [],
    notes,
  };
  if (changes.length === 0) return report;
  const res = await applyPlan(host, writer, changes, {
    stateDir,
    kind: "lockdown",
    about: { shield: shieldOf(plan), backend: plan.backend },
  });
  report.runId = res.runId;
  report.written = res.applied.flatMap((c) => (c.kind === "file" || c.kind === "symlink" ? [c.path] : []));
  report.steps = res.steps;
  return report;
}

function shieldOf(plan: LockdownPlan): RecordedShield {
  return {
    host: plan.shield.host,
    port: plan.shield.port,
    addresses: plan.shield.addresses,
    ...(plan.tunnel ? { tunnel: plan.tunnel } : {}),
  };
}

/** Lockdown runs not rolled back yet, newest first. */
async function liveRuns(stateDir: string): Promise<RunSummary[]> {
  return (await listRuns(stateDir))
    .filter((r) => r.kind === "lockdown" && r.begun > 0 && !r.rolledBack)
    .reverse();
}

/**
 * Undo lockdown: every lockdown run, newest first, so that what the first one replaced comes
 * back as it was before any. With none recorded, the live rules are still looked for and
 * removed: they may have been loaded by hand.
 */
export async function rollbackLockdown(
  host: Host,
  writer: Writer,
  opts: LiveOptions = {},
): Promise<RollbackReport> {
  const stateDir = defaultStateDir(host.root);
  await migrateLegacyState(host, writer, stateDir);
  const live = opts.live !== false;
  const runs = await liveRuns(stateDir);
  const report: RollbackReport = {
    schema: "clawguard.lockdown-rollback/v1",
    root: host.root,
    runs: [],
    restored: [],
    steps: [],
    problems: [],
    nothingRecorded: runs.length === 0,
  };
  const restoredByRun: Array<RollbackReport["restored"]> = [];
  for (const r of runs) {
    const res = await rollbackRun(host, writer, stateDir, r.id, { leaveRunning: !live });
    report.runs.push(r.id);
    report.steps.push(...res.steps);
    report.problems.push(...res.problems);
    restoredByRun.push([...res.restored].reverse());
  }
  // Each path ends as the oldest run found it; list them in the order they were first changed.
  const seen = new Set<string>();
  for (const x of restoredByRun.reverse().flat())
    if (!seen.has(x.path)) {
      seen.add(x.path);
      report.restored.push(x);
    }
  if (runs.length === 0 && live) {
    const steps = await removeAnyRules();
    report.steps.push(...steps);
    for (const s of steps) if (!s.ok) report.problems.push(`${s.command}: ${s.detail ?? "failed"}`);
  }
  return report;
}

/** The shield of the lockdown in force, when one is recorded here. */
export async function recordedShield(host: Host): Promise<RecordedShield | null> {
  const stateDir = defaultStateDir(host.root);
  const [latest] = await liveRuns(stateDir);
  if (latest) {
    const head = (await readRun(stateDir, latest.id)).records.find((r) => r.t === "run");
    const shield = head?.t === "run" ? (head.about?.shield as RecordedShield | undefined) : undefined;
    if (shield) return shield;
  }
  return (await readLegacyState(host))?.shield ?? null;
}
