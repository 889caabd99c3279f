/**
 * From the policy's decisions to what a log record says: allowed, denied or audited, with the
 * rule and reason. The proxy and `shield check` both go through here, so the check reports what
 * the log would.
 */
import type { Decision, LogRecord } from "../types.js";

export type Outcome = Pick<LogRecord, "decision" | "rule" | "reason">;

/** Why a request no rule decides is refused (or, in audit mode, let through and flagged). */
export const DEFAULT_REASON = "no rule allows this destination";
export const LOCKDOWN_REASON = "lockdown mode";
/** A request from nobody the shield knows: wrong or missing token, unknown source address. */
export const UNKNOWN_AGENT_REASON = "refused: no known agent for these credentials and source address";
export const UNKNOWN_SOURCE_REASON = "refused: no agent has this source address";

/**
 * What decided a record, in one word or the rule's label: the rule, `default` (no rule
 * matched), `lockdown`, `unknown agent`, or `-` (the request itself was refused: malformed,
 * a shield limit, an internal error; its reason says which).
 */
export function causeOf(r: Pick<LogRecord, "rule" | "reason">): string {
  if (r.rule !== null) return r.rule;
  if (r.reason === UNKNOWN_AGENT_REASON || r.reason === UNKNOWN_SOURCE_REASON) return "unknown agent";
  if (r.reason.startsWith(LOCKDOWN_REASON)) return "lockdown";
  if (
    r.reason === DEFAULT_REASON ||
    r.reason.startsWith(`${DEFAULT_REASON};`) ||
    r.reason.startsWith(`audit: ${DEFAULT_REASON}`)
  )
    return "default";
  return "-";
}

/**
 * The reason worth printing next to the cause: none for a request its rule allowed and that
 * went through; for one that failed after that (DNS, connect), only what failed.
 */
export function reasonShown(r: Pick<LogRecord, "decision" | "rule" | "reason">): string | null {
  const plain = r.rule !== null ? `matched ${r.rule}` : null;
  if (plain !== null && r.reason === plain && r.decision === "allowed") return null;
  if (plain !== null && r.reason.startsWith(`${plain}; `)) return r.reason.slice(plain.length + 2);
  return r.reason;
}

export function outcomeOf(d: Decision): Outcome {
  return {
    decision: d.verdict !== "allow" ? "denied" : d.audited ? "audited" : "allowed",
    rule: d.rule,
    reason: d.reason,
  };
}

/** The name was allowed and every address too: the record is audited if either step was. */
export function combined(name: Decision, address: Decision): Outcome {
  if (address.audited && !name.audited) return outcomeOf(address);
  const o = outcomeOf(name);
  return address.audited ? { ...o, decision: "audited" } : o;
}
