/**
 * From the policy's decisions to what a log record says: allowed, denied or audited, with the
 * rule and reason. The proxy and `shield check` both go through here, so the check reports what
 * the log would.
 */
import type { Decision, LogRecord } from "../types.js";

export type Outcome = Pick<LogRecord, "decision" | "rule" | "reason">;

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
