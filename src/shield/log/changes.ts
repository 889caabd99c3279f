/**
 * Changes made by operators (a mode switch, a rule, an operator, an access grant), as records of
 * the shield's own audit log, in the same hash chain as every decision. A change record's method
 * names the kind of change (no HTTP method is spelled like these), its `rule` column holds
 * "operator:NAME" (who made it: the operator's name is the rule the change followed), and its
 * agent and fleet are what it touched, so a scoped operator's log shows the changes in their
 * fleets and nothing of others. Pure.
 */
import type { LogRecord } from "../types.js";

export const CHANGE_METHODS = {
  mode: "MODE",
  ruleAdded: "RULE+",
  ruleRemoved: "RULE-",
  operatorAdded: "OPERATOR+",
  operatorRemoved: "OPERATOR-",
  grant: "GRANT",
  grantRevoked: "UNGRANT",
  caCreated: "SSH-CA",
} as const;

export type ChangeKind = keyof typeof CHANGE_METHODS;

/**
 * The methods of the records the shield writes as it applies a config where agents joined, left
 * or got a new key (see membership.ts). Made through the admin API, they carry the operator in
 * `rule` as a change record does.
 */
export const MEMBERSHIP_METHODS = { joined: "ENROL", left: "REVOKE", rekeyed: "REKEY" } as const;

const METHODS: readonly string[] = [...Object.values(CHANGE_METHODS), ...Object.values(MEMBERSHIP_METHODS)];

const PREFIX = "operator:";

/** The `rule` a change record carries for the operator who made it. */
export function operatorRule(name: string): string {
  return PREFIX + name;
}

/** The operator who made a change record (or an enrolment through the API), or null for any other record. */
export function changeOperator(r: Pick<LogRecord, "method" | "rule">): string | null {
  if (!METHODS.includes(r.method) || r.rule === null || !r.rule.startsWith(PREFIX)) return null;
  return r.rule.slice(PREFIX.length);
}

export function changeMethods(): readonly string[] {
  return METHODS;
}

export interface ChangeTarget {
  agent?: string | null;
  fleet?: string | null;
  tier?: string | null;
}

/** One change by one operator, at `at` (ms since the epoch), described by `reason`. */
export function changeRecord(
  operator: string,
  kind: ChangeKind,
  target: ChangeTarget,
  reason: string,
  at: number = Date.now(),
): LogRecord {
  return {
    ts: at,
    agent: target.agent ?? null,
    fleet: target.fleet ?? null,
    tier: target.tier ?? null,
    sourceAddress: "",
    method: CHANGE_METHODS[kind],
    host: "",
    port: 0,
    path: null,
    decision: "allowed",
    rule: operatorRule(operator),
    reason,
    upstreamAddress: null,
    bytesUp: 0,
    bytesDown: 0,
    durationMs: 0,
  };
}
