import type { AuditReport } from "../audit/audit.js";
import { isWaived, LAYERS, type Finding } from "../checks/finding.js";

/**
 * The audit as JUnit XML, the report format every CI system reads: a suite per layer, a test
 * case per check. A failing check is a `<failure>`, one that could not run an `<error>`, a skip
 * or a waived finding `<skipped>`; a warning passes and says so in `<system-out>`.
 */

export function xmlEscape(s: string): string {
  return (
    s
      // Characters XML 1.0 cannot hold at all, even escaped.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "\ufffd")
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
  );
}

const attrs = (a: Record<string, string | number>) =>
  Object.entries(a)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join("");

function detail(f: Finding): string {
  const ev = f.evidence.source ? `${f.evidence.source}: ${f.evidence.excerpt}` : f.evidence.excerpt;
  return [`evidence: ${ev}`, f.remediation ? `fix: ${f.remediation}` : ""].filter(Boolean).join("\n");
}

/** A failure's one-line message: what this host's finding says, or else the goal that failed. */
const why = (f: Finding) => f.detail ?? f.title;

function testcase(f: Finding): string {
  const open = `    <testcase${attrs({ classname: `clawguard.${f.layer}`, name: `${f.id}: ${f.title}`, time: 0 })}`;
  let body = "";
  if (isWaived(f))
    body = `<skipped${attrs({ message: `waived until ${f.waiver!.expires}: ${f.waiver!.reason}` })}/>`;
  else if (f.status === "fail")
    body = `<failure${attrs({ type: f.severity, message: why(f) })}>${xmlEscape(detail(f))}</failure>`;
  else if (f.status === "error")
    body = `<error${attrs({ type: "error", message: why(f) })}>${xmlEscape(detail(f))}</error>`;
  else if (f.status === "skip") body = `<skipped${attrs({ message: f.evidence.excerpt })}/>`;
  else if (f.status === "warn")
    body = `<system-out>${xmlEscape(`warning (${f.severity}): ${f.detail ? `${f.detail}\n` : ""}${detail(f)}`)}</system-out>`;
  return body ? `${open}>${body}</testcase>` : `${open}/>`;
}

function counts(fs: readonly Finding[]) {
  return {
    tests: fs.length,
    failures: fs.filter((f) => f.status === "fail" && !isWaived(f)).length,
    errors: fs.filter((f) => f.status === "error" && !isWaived(f)).length,
    skipped: fs.filter((f) => f.status === "skip" || isWaived(f)).length,
  };
}

export function renderJunit(r: AuditReport): string {
  const host = r.system?.hostname ?? "unknown";
  const suites = LAYERS.flatMap((layer) => {
    const fs = r.findings.filter((f) => f.layer === layer);
    if (fs.length === 0) return [];
    return [
      `  <testsuite${attrs({ name: layer, ...counts(fs), time: 0, timestamp: r.startedAt.replace(/\.\d+Z$/, ""), hostname: host })}>`,
      ...fs.map(testcase),
      "  </testsuite>",
    ];
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: "clawguard audit", ...counts(r.findings), time: r.durationMs / 1000 })}>`,
    ...suites,
    "</testsuites>",
    "",
  ].join("\n");
}
