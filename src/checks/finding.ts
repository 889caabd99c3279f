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
  /** The check's goal, as its catalog entry states it: the same for every finding of the check. */
  title: string;
  /** This finding's result in one line, beyond the goal ("3 secret paths are open to every user"). */
  detail?: string;
  evidence: Evidence;
  /** What a person would type or write to fix it; empty when nothing is to be done. */
  remediation: string;
  /** Whether `clawguard harden` fixes it. */
  fixable: boolean;
  /** Set when a waiver (audit --waivers) names this finding for this host. */
  waiver?: WaiverMark;
}

/** A waiver's mark on a finding; an expired one no longer excuses it. */
export interface WaiverMark {
  reason: string;
  /** YYYY-MM-DD: the last day the waiver holds. */
  expires: string;
  expired: boolean;
}

/** A waived finding that still holds: out of the exit code and the list that needs attention. */
export function isWaived(f: Finding): boolean {
  return f.waiver !== undefined && !f.waiver.expired;
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
      (f.status === "fail" || f.status === "error") &&
      !isWaived(f) &&
      severityRank(f.severity) <= severityRank(threshold),
  );
}
