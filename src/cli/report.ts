import pc from "picocolors";
import type { AuditReport } from "../audit/audit.js";
import { LAYERS, type Finding, type Status } from "../checks/finding.js";

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

/** Colour only for a person at a terminal who has not asked for none. */
export function wantColor(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !("NO_COLOR" in process.env && process.env.NO_COLOR !== "");
}

const MARK: Record<Status, string> = {
  pass: "PASS",
  fail: "FAIL",
  warn: "WARN",
  skip: "SKIP",
  error: "ERR ",
};

function findingLines(f: Finding, s: Style): string[] {
  const lines = [`  ${s.status[f.status](MARK[f.status])} ${f.title} ${s.dim(`[${f.id}, ${f.severity}]`)}`];
  if (f.status !== "pass") {
    const ev = f.evidence.source ? `${f.evidence.source}: ${f.evidence.excerpt}` : f.evidence.excerpt;
    lines.push(`       ${s.dim("evidence:")} ${ev.split("\n").join("\n                 ")}`);
    if (f.remediation)
      lines.push(
        `       ${s.dim("fix:")} ${f.remediation}${f.fixable ? s.dim(" (clawguard harden does this)") : ""}`,
      );
  }
  return lines;
}

export function renderText(report: AuditReport, s: Style): string {
  const out: string[] = [];
  for (const layer of LAYERS) {
    const fs = report.findings.filter((f) => f.layer === layer);
    if (fs.length === 0) continue;
    out.push(s.bold(layer));
    for (const f of fs) out.push(...findingLines(f, s));
    out.push("");
  }
  const sum = report.summary;
  out.push(
    `${report.findings.length} checks in ${report.durationMs} ms: ` +
      (["pass", "fail", "warn", "error", "skip"] as const)
        .map((k) => s.status[k](`${sum[k]} ${k}`))
        .join(", ") +
      (report.asRoot ? "" : s.dim(" (not root: some checks skipped)")),
  );
  return out.join("\n") + "\n";
}
