/**
 * The fleet at a glance: one row per host, one cell per layer (checks passed, failed, the worst
 * severity among the failures), hosts that could not be audited first, then the worst hosts.
 * Pure: the text and HTML reports both draw it.
 */
import { LAYERS, SEVERITIES, type Layer, type Severity } from "../checks/finding.js";
import type { HostError, HostStatus } from "./host.js";
import type { AuditReport, Finding } from "./reports.js";

export interface AuditedHost {
  host: string;
  address: string;
  status: HostStatus;
  error?: HostError;
  report?: AuditReport;
}

export interface Cell {
  pass: number;
  /** Checks that failed or could not be read. */
  fail: number;
  warn: number;
  /** The most severe of the failures. */
  worst?: Severity;
}

export interface Row {
  host: string;
  address: string;
  status: HostStatus;
  error?: HostError;
  cells: Partial<Record<Layer, Cell>>;
  pass: number;
  fail: number;
  worst?: Severity;
  /** Failures at or above the --fail-on severity. */
  failing: number;
}

export interface Summary {
  hosts: number;
  ok: number;
  unreachable: number;
  error: number;
  /** Hosts audited with a failure at or above --fail-on. */
  failing: number;
  failOn: Severity;
  findings: { pass: number; fail: number; warn: number; skip: number; error: number };
}

const rank = (s: Severity | undefined) => (s === undefined ? SEVERITIES.length : SEVERITIES.indexOf(s));

export function isFailure(f: Finding): boolean {
  return f.status === "fail" || f.status === "error";
}

/** A finding that makes the exit code 1: failing (or unreadable) at or above `threshold`. */
export function failsAt(f: Finding, threshold: Severity): boolean {
  return isFailure(f) && rank(f.severity) <= rank(threshold);
}

function worse(a: Severity | undefined, b: Severity): Severity {
  return rank(b) < rank(a) ? b : (a ?? b);
}

export function rowOf(h: AuditedHost, failOn: Severity): Row {
  const row: Row = {
    host: h.host,
    address: h.address,
    status: h.status,
    ...(h.error ? { error: h.error } : {}),
    cells: {},
    pass: 0,
    fail: 0,
    failing: 0,
  };
  for (const f of h.report?.findings ?? []) {
    const cell = (row.cells[f.layer] ??= { pass: 0, fail: 0, warn: 0 });
    if (f.status === "pass") {
      cell.pass++;
      row.pass++;
    } else if (f.status === "warn") cell.warn++;
    else if (isFailure(f)) {
      cell.fail++;
      row.fail++;
      cell.worst = worse(cell.worst, f.severity);
      row.worst = worse(row.worst, f.severity);
      if (failsAt(f, failOn)) row.failing++;
    }
  }
  return row;
}

/** Rows, worst first: hosts not audited, then by worst severity, failures, and name. */
export function matrixOf(hosts: readonly AuditedHost[], failOn: Severity): { rows: Row[]; layers: Layer[] } {
  const rows = hosts.map((h) => rowOf(h, failOn));
  rows.sort(
    (a, b) =>
      Number(b.status !== "ok") - Number(a.status !== "ok") ||
      rank(a.worst) - rank(b.worst) ||
      b.fail - a.fail ||
      (a.host < b.host ? -1 : a.host > b.host ? 1 : 0),
  );
  const seen = new Set(hosts.flatMap((h) => h.report?.findings.map((f) => f.layer) ?? []));
  return { rows, layers: LAYERS.filter((l) => seen.has(l)) };
}

export function summaryOf(hosts: readonly AuditedHost[], failOn: Severity): Summary {
  const s: Summary = {
    hosts: hosts.length,
    ok: 0,
    unreachable: 0,
    error: 0,
    failing: 0,
    failOn,
    findings: { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 },
  };
  for (const h of hosts) {
    s[h.status]++;
    if (!h.report) continue;
    if (h.report.findings.some((f) => failsAt(f, failOn))) s.failing++;
    for (const f of h.report.findings) s.findings[f.status]++;
  }
  return s;
}

/** audit's exit code for the fleet: 1 when a host failed at or above --fail-on or was not audited. */
export function exitCodeOf(s: Summary): number {
  return s.failing > 0 || s.ok < s.hosts ? 1 : 0;
}
