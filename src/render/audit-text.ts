import pc from "picocolors";
import type { AuditReport } from "../audit/audit.js";
import {
  isWaived,
  LAYERS,
  SEVERITIES,
  severityRank,
  type Finding,
  type Severity,
  type Status,
} from "../checks/finding.js";

/**
 * The audit as a person reads it at a terminal: who was audited, the verdict in one line, then
 * only what needs attention (worst first), the skipped checks folded by their shared reason, and
 * what `harden` would fix. `verbose` lists every check by layer instead.
 */

type Paint = (s: string) => string;

export interface Style {
  status: Record<Status, Paint>;
  dim: Paint;
  bold: Paint;
}

export function makeStyle(color: boolean): Style {
  const c = pc.createColors(color);
  return {
    status: { pass: c.green, fail: c.red, warn: c.yellow, skip: c.dim, error: c.magenta },
    dim: c.dim,
    bold: c.bold,
  };
}

export interface TextOptions {
  style: Style;
  /** Every check, by layer, as well as the summary. */
  verbose?: boolean;
  /** Wrap at this many columns; 0 or undefined leaves lines as they are. */
  width?: number;
  failOn: Severity;
  exitCode: number;
}

const MARK: Record<Status, string> = {
  pass: "PASS",
  fail: "FAIL",
  warn: "WARN",
  skip: "SKIP",
  error: "ERR ",
};
const NEEDS_ATTENTION: readonly Status[] = ["fail", "error", "warn"];
const DETAIL_INDENT = " ".repeat(7);
const LABELLED = /^ {7}(?:evidence|fix|waiver):/;

/** Where a wrapped line continues: under a finding's title, or under the text after its label. */
function continuationIndent(line: string): number {
  if (/^ {2}\S/.test(line)) return 7;
  const plain = line.replace(ANSI, "");
  if (LABELLED.test(plain) || plain.startsWith(" ".repeat(17))) return 17;
  return plain.startsWith(DETAIL_INDENT) ? 7 : 2;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const visible = (s: string) => s.replace(ANSI, "").length;

/** Wrap one line at `width`, continuing under `indent` spaces; words longer than a line stay whole. */
export function wrapLine(line: string, width: number | undefined, indent: number): string[] {
  if (!width || visible(line) <= width) return [line];
  const lead = line.match(/^ */)![0];
  const words = line.slice(lead.length).split(" ");
  const out: string[] = [];
  let cur = lead;
  for (const w of words) {
    const fresh = cur.trim() === "";
    if (!fresh && visible(cur) + 1 + visible(w) > width) {
      out.push(cur);
      cur = " ".repeat(indent) + w;
    } else cur = fresh ? cur + w : `${cur} ${w}`;
  }
  out.push(cur);
  return out;
}

function header(r: AuditReport, s: Style): string {
  const sys = r.system;
  const parts = [
    `clawguard ${r.version ?? ""}`.trim(),
    `host ${sys?.hostname || "unknown"}`,
    sys?.os || "unknown OS",
    r.asRoot ? "as root" : "not root: checks that need root are skipped",
  ];
  if (r.root !== "/") parts.push(`system at ${r.root}`);
  return s.bold(parts.join(" · "));
}

/** `6 fail (2 critical, 4 high) · 1 warn · 40 pass · 52 skip · exit 1 (fail-on high)` */
export function summaryLine(r: AuditReport, failOn: Severity, exitCode: number, s: Style): string {
  const open = r.findings.filter((f) => !isWaived(f));
  const count = (st: Status) => open.filter((f) => f.status === st);
  const bySeverity = (fs: Finding[]) =>
    SEVERITIES.map((sev) => [sev, fs.filter((f) => f.severity === sev).length] as const)
      .filter(([, n]) => n > 0)
      .map(([sev, n]) => `${n} ${sev}`)
      .join(", ");
  const parts: string[] = [];
  for (const st of ["fail", "error", "warn"] as const) {
    const fs = count(st);
    if (fs.length)
      parts.push(s.status[st](`${fs.length} ${st}${st === "warn" ? "" : ` (${bySeverity(fs)})`}`));
  }
  parts.push(s.status.pass(`${count("pass").length} pass`), s.dim(`${count("skip").length} skip`));
  const waived = r.findings.length - open.length;
  if (waived) parts.push(s.dim(`${waived} waived`));
  if (parts.length === 2 && r.findings.length === 0) parts.unshift("no checks ran");
  parts.push(`exit ${exitCode} (fail-on ${failOn})`);
  return parts.join(" · ");
}

function findingLines(f: Finding, s: Style, withSeverity: boolean): string[] {
  const sev = withSeverity ? ` ${f.severity.padEnd(8)}` : "";
  const lines = [`  ${s.status[f.status](MARK[f.status])}${sev} ${f.title} ${s.dim(`[${f.id}]`)}`];
  // The title is the check's goal; the line under it says what this host's finding is.
  if (f.detail) lines.push(`${DETAIL_INDENT}${f.detail}`);
  if (f.status !== "pass") {
    const ev = f.evidence.source ? `${f.evidence.source}: ${f.evidence.excerpt}` : f.evidence.excerpt;
    lines.push(...ev.split("\n").map((l, i) => `       ${i === 0 ? s.dim("evidence:") : "         "} ${l}`));
    if (f.remediation)
      lines.push(
        `       ${s.dim("fix:")} ${f.remediation}${f.fixable ? s.dim(" (clawguard harden does this)") : ""}`,
      );
    if (f.waiver)
      lines.push(
        `       ${s.dim("waiver:")} ${f.waiver.reason} (${f.waiver.expired ? "expired" : "until"} ${f.waiver.expires})`,
      );
  }
  return lines;
}

/** Skips folded by their shared reason: `gateway, user: 12 checks skipped: OpenClaw is not installed`. */
export function foldedSkips(findings: readonly Finding[]): string[] {
  const byReason = new Map<string, Finding[]>();
  for (const f of findings.filter((x) => x.status === "skip")) {
    const reason = f.evidence.excerpt.split("\n")[0] || "no reason given";
    byReason.set(reason, [...(byReason.get(reason) ?? []), f]);
  }
  return [...byReason]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([reason, fs]) => {
      const layers = LAYERS.filter((l) => fs.some((f) => f.layer === l));
      return `${layers.join(", ")}: ${fs.length} ${fs.length === 1 ? "check" : "checks"} skipped: ${reason}`;
    });
}

/** Worst first, then in layer order, then as the layer reported them. */
export function attentionOrder(findings: readonly Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .filter(({ f }) => NEEDS_ATTENTION.includes(f.status) && !isWaived(f))
    .sort(
      (a, b) =>
        severityRank(a.f.severity) - severityRank(b.f.severity) ||
        LAYERS.indexOf(a.f.layer) - LAYERS.indexOf(b.f.layer) ||
        a.i - b.i,
    )
    .map(({ f }) => f);
}

function footer(r: AuditReport, s: Style): string[] {
  const out: string[] = [];
  const fixable = attentionOrder(r.findings).filter((f) => f.fixable);
  if (fixable.length)
    out.push(
      `clawguard harden would fix ${fixable.length} of these: ${fixable.map((f) => f.id).join(", ")}`,
      s.dim("  clawguard harden shows the plan; clawguard harden --apply makes it"),
    );
  const waived = r.findings.filter(isWaived);
  if (waived.length) out.push(s.dim(`waived: ${waived.map((f) => f.id).join(", ")}`));
  return out;
}

export function renderAuditText(r: AuditReport, o: TextOptions): string {
  const s = o.style;
  const out: string[] = [header(r, s), summaryLine(r, o.failOn, o.exitCode, s), ""];
  if (o.verbose) {
    for (const layer of LAYERS) {
      const fs = r.findings.filter((f) => f.layer === layer);
      if (fs.length === 0) continue;
      out.push(s.bold(layer));
      for (const f of fs) out.push(...findingLines(f, s, false));
      out.push("");
    }
  } else {
    const attention = attentionOrder(r.findings);
    for (const f of attention) out.push(...findingLines(f, s, true));
    if (attention.length) out.push("");
    const skips = foldedSkips(r.findings.filter((f) => !isWaived(f)));
    for (const line of skips) out.push(s.dim(line));
    if (skips.length) out.push("");
  }
  out.push(...footer(r, s));
  out.push(
    s.dim(`${r.findings.length} checks in ${r.durationMs} ms${o.verbose ? "" : "; -v lists every check"}`),
  );
  return out.flatMap((l) => wrapLine(l, o.width, continuationIndent(l))).join("\n") + "\n";
}
