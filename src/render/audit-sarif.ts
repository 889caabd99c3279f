import type { AuditReport } from "../audit/audit.js";
import { catalogEntries } from "../checks/catalog.js";
import { isWaived, type Finding, type Severity } from "../checks/finding.js";

/**
 * The audit as SARIF 2.1.0, for code-scanning dashboards and security tools: one rule per check
 * (its goal, its fix), one result per finding. A failing or warning finding is a `fail` result
 * whose level follows its severity; a pass, a skip and a check that could not run have level
 * `none` (kinds `pass`, `notApplicable`, `review`). A waiver becomes an external suppression.
 */

export const SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

type Level = "error" | "warning" | "note" | "none";

const LEVEL: Record<Severity, Level> = {
  critical: "error",
  high: "error",
  medium: "warning",
  low: "note",
  info: "note",
};

function kindAndLevel(f: Finding): { kind: string; level: Level } {
  switch (f.status) {
    case "fail":
      return { kind: "fail", level: LEVEL[f.severity] };
    case "warn":
      return { kind: "fail", level: "warning" };
    case "pass":
      return { kind: "pass", level: "none" };
    case "skip":
      return { kind: "notApplicable", level: "none" };
    case "error":
      return { kind: "review", level: "none" };
  }
}

/** `/etc/ssh/sshd_config line 5`, `/etc/sudoers.d/x:3`: the first file an evidence names, and its line. */
export function evidenceLocation(source: string): { path: string; line?: number } | undefined {
  const first = source.split(", ")[0] ?? "";
  const m = /^(\/[^\s:]*)(?:(?::| line )(\d+))?$/.exec(first);
  if (!m) return undefined;
  return m[2] ? { path: m[1]!, line: Number(m[2]) } : { path: m[1]! };
}

function fileUri(p: string): string {
  return "file://" + p.split("/").map(encodeURIComponent).join("/");
}

function message(f: Finding): string {
  const ev = f.evidence.source ? `${f.evidence.source}: ${f.evidence.excerpt}` : f.evidence.excerpt;
  return [f.title, f.detail ?? "", ev, f.remediation ? `fix: ${f.remediation}` : ""]
    .filter(Boolean)
    .join("\n");
}

export function renderSarif(r: AuditReport): object {
  const catalog = new Map(catalogEntries().map((e) => [e.id, e]));
  const ids = [...new Set(r.findings.map((f) => f.id))];
  const index = new Map(ids.map((id, i) => [id, i]));
  const rules = ids.map((id) => {
    const e = catalog.get(id);
    const f = r.findings.find((x) => x.id === id)!;
    return {
      id,
      // Every finding of a check carries its catalog title, so the two agree.
      shortDescription: { text: e?.title ?? f.title },
      ...((e?.remediation ?? f.remediation) ? { help: { text: e?.remediation ?? f.remediation } } : {}),
      defaultConfiguration: { level: LEVEL[e?.severity ?? f.severity] },
      properties: { layer: f.layer, severity: e?.severity ?? f.severity, fixable: e?.fixable ?? f.fixable },
    };
  });
  const results = r.findings.map((f) => {
    const where = evidenceLocation(f.evidence.source);
    return {
      ruleId: f.id,
      ruleIndex: index.get(f.id)!,
      ...kindAndLevel(f),
      message: { text: message(f) },
      ...(where
        ? {
            locations: [
              {
                physicalLocation: {
                  artifactLocation: { uri: fileUri(where.path) },
                  ...(where.line ? { region: { startLine: where.line } } : {}),
                },
              },
            ],
          }
        : {}),
      ...(isWaived(f)
        ? {
            suppressions: [
              {
                kind: "external",
                status: "accepted",
                justification: `${f.waiver!.reason} (until ${f.waiver!.expires})`,
              },
            ],
          }
        : {}),
      properties: {
        status: f.status,
        severity: f.severity,
        layer: f.layer,
        ...(f.waiver?.expired ? { waiverExpired: f.waiver.expires } : {}),
      },
    };
  });
  return {
    $schema: SARIF_SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: { driver: { name: "clawguard", ...(r.version ? { version: r.version } : {}), rules } },
        invocations: [
          {
            executionSuccessful: true,
            startTimeUtc: r.startedAt,
            properties: {
              root: r.root,
              asRoot: r.asRoot,
              ...(r.system ? { hostname: r.system.hostname, os: r.system.os } : {}),
            },
          },
        ],
        results,
      },
    ],
  };
}
