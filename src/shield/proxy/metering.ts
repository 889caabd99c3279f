/**
 * The upload side of an open request or tunnel, metered piece by piece against the agent's
 * budgets in force at each piece (a reload that tightens one applies to what is already open).
 */
import { CUT_PREFIX, overrunReason, overrunRule, type Overrun } from "../admission/budget.js";
import type { Outcome } from "../policy/outcome.js";

/** Counts `n` bytes about to go up: null while the budgets have room, else the overrun and whether to cut. */
export type Meter = (n: number) => { overrun: Overrun; cut: boolean } | null;

/** What sends nothing up: the meter of a request without a body. */
export const UNMETERED: Meter = () => null;

/** A tunnel's or request's outcome once a budget ran out under it. */
export function overrunOutcome(outcome: Outcome, overrun: Overrun, cut: boolean): Outcome {
  if (!cut) {
    // Audit: the record names the first thing audit let through, a rule's or a budget's.
    if (outcome.decision === "audited") return outcome;
    return { decision: "audited", rule: overrunRule(overrun), reason: `audit: ${overrunReason(overrun)}` };
  }
  return { decision: "denied", rule: overrunRule(overrun), reason: `${CUT_PREFIX}${overrunReason(overrun)}` };
}
