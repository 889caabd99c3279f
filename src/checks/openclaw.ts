import type { Facts } from "../facts/keys.js";
import type { OpenClawAuditRun } from "../facts/openclaw-audit.js";
import { catalog, need } from "./catalog.js";
import type { Finding, Severity } from "./finding.js";
import { defineLayer } from "./layer.js";

const C = catalog("openclaw", {
  security_audit: {
    severity: "medium",
    title: "OpenClaw's own security audit runs",
    remediation: "run it by hand to see why: openclaw security audit --json",
    fixable: false,
  },
});

/** OpenClaw's check ids become the second half of a clawguard id: lowercase, `_` for the rest. */
export function sanitiseCheckId(checkId: string): string {
  const s = checkId
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .replace(/_+/g, "_")
    .replace(/^_|_$/g, "");
  return s || "unnamed";
}

const SEVERITY: Record<string, Severity> = {
  critical: "critical",
  warn: "medium",
  warning: "medium",
  info: "info",
};

/** Map one run of `openclaw security audit --json` to findings (pure). */
export function mapOpenClawAudit(run: OpenClawAuditRun): Finding[] {
  return run.report.findings.map((f): Finding => {
    const sev = f.severity.toLowerCase();
    const severity = SEVERITY[sev] ?? "high";
    const failing = severity !== "info";
    return {
      id: `openclaw.${sanitiseCheckId(f.checkId)}`,
      layer: "openclaw",
      severity,
      // OpenClaw's own words: a critical (or unknown) finding fails, a warning stays a warning
      // (several are advice that holds only in some setups, e.g. behind a reverse proxy).
      status: !failing ? "pass" : severity === "medium" ? "warn" : "fail",
      // The goal in clawguard's voice, the same on every host; OpenClaw's own title says what
      // it found, and may differ from one version or host to the next.
      title: `OpenClaw's own check ${f.checkId} passes`,
      detail: f.title,
      evidence: {
        source: run.stateDir ? `${run.command} (state dir ${run.stateDir})` : run.command,
        excerpt: [`${f.checkId} [${f.severity}]`, f.detail].filter(Boolean).join(": "),
      },
      remediation: failing ? (f.remediation ?? "") : "",
      fixable: false,
    };
  });
}

export function checkOpenClaw({ openclawAudit }: Pick<Facts, "openclawAudit">): Finding[] {
  const out: Finding[] = [];
  const runs = need(openclawAudit, C.security_audit, out);
  if (!runs) return out;
  for (const run of runs) {
    const n = run.report.findings;
    const count = (s: string) => n.filter((f) => f.severity.toLowerCase() === s).length;
    out.push(
      C.security_audit.pass({
        source: run.command,
        excerpt: `ran as ${run.ranAs}: ${count("critical")} critical, ${count("warn") + count("warning")} warn, ${count("info")} info`,
      }),
    );
    out.push(...mapOpenClawAudit(run));
  }
  return out;
}

export const openclawLayer = defineLayer({
  layer: "openclaw",
  needs: ["openclawAudit"],
  check: checkOpenClaw,
});
