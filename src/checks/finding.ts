export const SEVERITIES = ["critical", "high", "medium", "low", "info"] as const;
export type Severity = (typeof SEVERITIES)[number];

export const STATUSES = ["pass", "fail", "warn", "skip", "error"] as const;
export type Status = (typeof STATUSES)[number];

export const LAYERS = [
  "gateway",
  "user",
  "systemd",
  "firewall",
  "fail2ban",
  "ssh",
  "kernel",
  "tmp",
  "credentials",
  "updates",
  "egress",
  "openclaw",
] as const;
export type Layer = (typeof LAYERS)[number];

/** Where a finding's verdict came from: a path or a command, and the excerpt that decided it. */
export interface Evidence {
  source: string;
  excerpt: string;
}

export interface Finding {
  /** Stable dotted id, `layer.what`. */
  id: string;
  layer: Layer;
  severity: Severity;
  status: Status;
  title: string;
  evidence: Evidence;
  /** What a person would type or write to fix it; empty when nothing is to be done. */
  remediation: string;
  /** Whether `clawguard harden` fixes it. */
  fixable: boolean;
}

/** Lower rank is more severe. */
export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export function isSeverity(s: string): s is Severity {
  return (SEVERITIES as readonly string[]).includes(s);
}

export function isLayer(s: string): s is Layer {
  return (LAYERS as readonly string[]).includes(s);
}

/** Findings that make the audit exit 1: failing or erroring at or above the threshold. */
export function failingAtOrAbove(findings: Finding[], threshold: Severity): Finding[] {
  return findings.filter(
    (f) =>
      (f.status === "fail" || f.status === "error") && severityRank(f.severity) <= severityRank(threshold),
  );
}
