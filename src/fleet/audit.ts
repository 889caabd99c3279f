/**
 * `fleet audit`: `clawguard audit --json` on every host at once (up to --forks), each checked
 * and kept as it finishes, and the fleet's report (clawguard.fleet-audit/v1) built from them.
 */
import type { Layer, Severity } from "../checks/finding.js";
import { forEachLimit, hostError, HostSession, statusOf, type HostContext } from "./host.js";
import { summaryOf, type Summary } from "./matrix.js";
import type { RemoteInfo } from "./remote/clawguard.js";
import { auditReportSchema, parseReport, type AuditReport } from "./reports.js";
import type { HostRecord, RunRecord } from "./store.js";
import type { Target } from "./target.js";

export interface AuditResult {
  report?: AuditReport;
  clawguard?: RemoteInfo;
}

export interface HostAudit extends HostRecord {
  result?: AuditResult;
}

export interface AuditSelection {
  layers?: readonly Layer[];
  skip?: readonly Layer[];
}

/** The arguments for the host's `clawguard audit`. */
export function auditArgs(sel: AuditSelection): string[] {
  return [
    "audit",
    "--json",
    ...(sel.layers ?? []).flatMap((l) => ["--layer", l]),
    ...(sel.skip ?? []).flatMap((l) => ["--skip", l]),
  ];
}

export async function auditHost(target: Target, ctx: HostContext, sel: AuditSelection): Promise<HostAudit> {
  const startedAt = new Date();
  const session = new HostSession(target, ctx);
  const base = { host: target.name, target, startedAt: startedAt.toISOString() };
  try {
    const cg = await session.clawguard();
    const r = await cg.run(auditArgs(sel), { timeoutMs: ctx.timeoutMs, cutOnHost: true });
    const report = parseReport(target.name, "audit --json", r, auditReportSchema, [0, 1]);
    return {
      ...base,
      status: "ok",
      result: { report, clawguard: cg.info },
      durationMs: Date.now() - +startedAt,
    };
  } catch (e) {
    const error = hostError(e);
    const clawguard = await session.info();
    return {
      ...base,
      status: statusOf(error),
      error,
      ...(clawguard ? { result: { clawguard } } : {}),
      durationMs: Date.now() - +startedAt,
    };
  } finally {
    await session.close();
  }
}

export async function auditFleet(
  targets: readonly Target[],
  ctx: HostContext,
  sel: AuditSelection,
  forks: number,
  onHost: (h: HostAudit, index: number) => void,
): Promise<HostAudit[]> {
  return forEachLimit(targets, forks, async (t, i) => {
    const h = await auditHost(t, ctx, sel);
    onHost(h, i);
    return h;
  });
}

export const FLEET_AUDIT_SCHEMA = "clawguard.fleet-audit/v1";

export interface FleetAuditDocument {
  schema: typeof FLEET_AUDIT_SCHEMA;
  run: { id: string; startedAt: string; finishedAt?: string; inventory?: string; limit?: string };
  hosts: Array<{
    host: string;
    address: string;
    status: HostRecord["status"];
    error?: HostRecord["error"];
    report?: AuditReport;
    clawguard?: RemoteInfo;
    startedAt: string;
    durationMs: number;
  }>;
  summary: Summary;
}

export function fleetAuditDocument(
  run: RunRecord,
  hosts: readonly HostAudit[],
  failOn: Severity,
): FleetAuditDocument {
  return {
    schema: FLEET_AUDIT_SCHEMA,
    run: {
      id: run.id,
      startedAt: run.startedAt,
      ...(run.finishedAt ? { finishedAt: run.finishedAt } : {}),
      ...(run.inventory ? { inventory: run.inventory } : {}),
      ...(typeof run.params.limit === "string" ? { limit: run.params.limit } : {}),
    },
    hosts: hosts.map((h) => ({
      host: h.host,
      address: h.target.address,
      status: h.status,
      ...(h.error ? { error: h.error } : {}),
      ...(h.result?.report ? { report: h.result.report } : {}),
      ...(h.result?.clawguard ? { clawguard: h.result.clawguard } : {}),
      startedAt: h.startedAt,
      durationMs: h.durationMs,
    })),
    summary: summaryOf(
      hosts.map((h) => ({
        host: h.host,
        address: h.target.address,
        status: h.status,
        report: h.result?.report,
      })),
      failOn,
    ),
  };
}
