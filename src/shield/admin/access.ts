/**
 * Who is asking the admin API, and what they may see and do. Pure: tokens and the config in,
 * an operator or null out; then one question per action. A scoped operator does not learn that
 * other fleets exist: what they may not see is treated as absent (a 404, never a 403), and
 * lists, logs, events and metrics leave it out.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { TOKEN_FILE_OPERATOR, type OperatorConfig, type Role } from "../config-operators.js";

export interface Operator {
  name: string;
  role: Role;
  /** null: every fleet, and agents in none. */
  fleets: ReadonlySet<string> | null;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** What an action needs: reading, changing the policy or state, or managing operators. */
export type Need = "read" | "change" | "admin";
const NEEDS: Record<Need, Role> = { read: "viewer", change: "operator", admin: "admin" };

export function may(op: Operator, need: Need): boolean {
  return RANK[op.role] >= RANK[NEEDS[need]];
}

/** Whether the operator sees things of this fleet (null: an agent in no fleet). */
export function seesFleet(op: Operator, fleet: string | null | undefined): boolean {
  if (op.fleets === null) return true;
  return fleet !== null && fleet !== undefined && op.fleets.has(fleet);
}

/** Everything, as the holder of a scope over all fleets sees it. */
export function unscoped(op: Operator): boolean {
  return op.fleets === null;
}

interface Known {
  op: Operator;
  hash: Buffer;
}

/** Tokens to operators; every token is compared, so a wrong one costs the same as a right one. */
export class OperatorTokens {
  private readonly known: Known[];

  constructor(operators: readonly OperatorConfig[], adminTokenSha256: Buffer | null) {
    this.known = operators.map((o) => ({
      op: { name: o.name, role: o.role, fleets: o.fleets === null ? null : new Set(o.fleets) },
      hash: Buffer.from(o.tokenSha256, "hex"),
    }));
    if (adminTokenSha256)
      this.known.push({
        op: { name: TOKEN_FILE_OPERATOR, role: "admin", fleets: null },
        hash: adminTokenSha256,
      });
  }

  authenticate(token: string): Operator | null {
    const got = createHash("sha256").update(token).digest();
    let found: Operator | null = null;
    for (const k of this.known) if (timingSafeEqual(got, k.hash) && found === null) found = k.op;
    return found;
  }

  get size(): number {
    return this.known.length;
  }
}
