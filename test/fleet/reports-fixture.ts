/** Audit reports as a host's clawguard sends them, for tests of what fleet makes of them. */
import type { Layer, Severity, Status } from "../../src/checks/finding.js";
import type { AuditReport, Finding } from "../../src/fleet/reports.js";

export function finding(id: string, status: Status, severity: Severity = "high"): Finding {
  return {
    id,
    layer: id.split(".")[0] as Layer,
    severity,
    status,
    title: `check ${id}`,
    evidence: { source: "/etc/x", excerpt: "x" },
    remediation: status === "pass" ? "" : `fix ${id}`,
    fixable: true,
  };
}

export function report(findings: Finding[]): AuditReport {
  const summary = { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 };
  for (const f of findings) summary[f.status]++;
  return {
    schema: "clawguard.audit/v1",
    root: "/",
    asRoot: true,
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 5,
    layers: [...new Set(findings.map((f) => f.layer))],
    findings,
    summary,
  };
}
