import { FactContext } from "../host/context.js";
import type { Host } from "../host/host.js";
import { LAYERS, severityRank, type Finding, type Layer, type Severity } from "./finding.js";
import { LAYER_CHECKS } from "./index.js";

export interface AuditReport {
  schema: "clawguard.audit/v1";
  root: string;
  asRoot: boolean;
  startedAt: string;
  durationMs: number;
  layers: Layer[];
  findings: Finding[];
  summary: Record<Finding["status"], number>;
}

export interface AuditOptions {
  layers?: Layer[];
}

/** Gather what the selected layers need (once, concurrently) and run their checks. */
export async function runAudit(host: Host, opts: AuditOptions = {}): Promise<AuditReport> {
  const started = Date.now();
  const wanted = new Set(opts.layers ?? LAYERS);
  const ctx = new FactContext(host);
  const selected = LAYER_CHECKS.filter((l) => wanted.has(l.layer));
  const perLayer = await Promise.all(
    selected.map(async (l): Promise<Finding[]> => {
      try {
        return l.check(await l.gather(ctx));
      } catch (err) {
        // A bug in one layer must not hide the others: report it where it happened.
        return [
          {
            id: `${l.layer}.internal_error`,
            layer: l.layer,
            severity: "high",
            status: "error",
            title: `The ${l.layer} checks failed unexpectedly`,
            evidence: {
              source: "clawguard",
              excerpt: err instanceof Error ? (err.stack ?? err.message) : String(err),
            },
            remediation: "Report this with the excerpt; the other layers' results still stand.",
            fixable: false,
          },
        ];
      }
    }),
  );
  const findings = perLayer.flat();
  const summary = { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 };
  for (const f of findings) summary[f.status]++;
  return {
    schema: "clawguard.audit/v1",
    root: host.root,
    asRoot: host.isRoot,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    layers: selected.map((l) => l.layer),
    findings,
    summary,
  };
}

/** Findings that make the audit exit 1: failing or erroring at or above the threshold. */
export function failingAtOrAbove(findings: Finding[], threshold: Severity): Finding[] {
  return findings.filter(
    (f) =>
      (f.status === "fail" || f.status === "error") && severityRank(f.severity) <= severityRank(threshold),
  );
}
