/**
 * What changed between two fleet audits: hosts with a check that passed and now fails
 * (regressed), one that failed and now passes (improved), hosts in only one of the runs, and
 * hosts audited before that now cannot be (unreachable, or an error) or the other way round.
 * Only checks both audits ran are compared. Pure.
 */
import type { Layer, Severity, Status } from "../checks/finding.js";
import type { HostError, HostStatus } from "./host.js";
import type { AuditedHost } from "./matrix.js";

export interface CheckChange {
  id: string;
  layer: Layer;
  severity: Severity;
  title: string;
  from: Status;
  to: Status;
}

export interface RunRef {
  id: string;
  startedAt: string;
}

export const FLEET_DIFF_SCHEMA = "clawguard.fleet-diff/v1";

export interface FleetDiff {
  schema: typeof FLEET_DIFF_SCHEMA;
  from: RunRef;
  to: RunRef;
  regressed: Array<{ host: string; checks: CheckChange[] }>;
  improved: Array<{ host: string; checks: CheckChange[] }>;
  /** Hosts only in the later run. */
  appeared: string[];
  /** Hosts only in the earlier run (gone from the inventory, or left out by --limit). */
  removed: string[];
  /** Audited in the first run, not in the second. */
  unreachable: Array<{ host: string; status: Exclude<HostStatus, "ok">; error?: HostError }>;
  /** Not audited in the first run, audited in the second. */
  recovered: string[];
}

const failing = (s: Status) => s === "fail" || s === "error";

export function diffRuns(
  from: RunRef,
  a: readonly AuditedHost[],
  to: RunRef,
  b: readonly AuditedHost[],
): FleetDiff {
  const before = new Map(a.map((h) => [h.host, h]));
  const after = new Map(b.map((h) => [h.host, h]));
  const d: FleetDiff = {
    schema: FLEET_DIFF_SCHEMA,
    from,
    to,
    regressed: [],
    improved: [],
    appeared: b.filter((h) => !before.has(h.host)).map((h) => h.host),
    removed: a.filter((h) => !after.has(h.host)).map((h) => h.host),
    unreachable: [],
    recovered: [],
  };
  for (const now of b) {
    const was = before.get(now.host);
    if (!was) continue;
    if (was.status === "ok" && now.status !== "ok")
      d.unreachable.push({ host: now.host, status: now.status, ...(now.error ? { error: now.error } : {}) });
    if (was.status !== "ok" && now.status === "ok") d.recovered.push(now.host);
    if (!was.report || !now.report) continue;
    const old = new Map(was.report.findings.map((f) => [f.id, f]));
    const worse: CheckChange[] = [];
    const better: CheckChange[] = [];
    for (const f of now.report.findings) {
      const o = old.get(f.id);
      if (!o) continue;
      const change = {
        id: f.id,
        layer: f.layer,
        severity: f.severity,
        title: f.title,
        from: o.status,
        to: f.status,
      };
      if (o.status === "pass" && failing(f.status)) worse.push(change);
      else if (failing(o.status) && f.status === "pass") better.push(change);
    }
    if (worse.length) d.regressed.push({ host: now.host, checks: worse });
    if (better.length) d.improved.push({ host: now.host, checks: better });
  }
  return d;
}
