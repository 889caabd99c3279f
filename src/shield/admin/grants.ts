/**
 * Time-limited SSH access to agents through the admin API: an operator asks for a grant for an
 * agent they see, the shield's CA signs it, and the grant is a record of the log naming them.
 * Every refusal (a malformed key, a duration over the maximum, an unknown agent, one out of
 * scope, no CA) comes before anything is signed or logged.
 */
import { z } from "zod";
import type { ShieldConfig } from "../config.js";
import { parseDuration } from "../units.js";
import { ACCOUNT_NAME } from "../../render/sshd-ca.js";
import { grantState, SshCaError, type Grant, type SshCa } from "../ssh/ca.js";
import type { Operator } from "./access.js";
import { visibleAgent } from "./scope.js";
import { ControlError } from "./control.js";
import { HttpError } from "./http.js";

export const grantSchema = z.strictObject({
  agent: z.string().min(1).max(128),
  key: z.string().min(1).max(16_384),
  for: z.string().min(1).max(32),
  /** The one account the certificate opens (its principal is agent-<id>:<user>). */
  as: z
    .string()
    .regex(ACCOUNT_NAME, "must be a Linux user name (lowercase, at most 32 characters)")
    .optional(),
  noForwarding: z.boolean().optional(),
  reason: z.string().min(1).max(512).optional(),
});

export type GrantBody = z.infer<typeof grantSchema>;

const STATUS: Partial<Record<string, number>> = {
  CG_SSH_KEY_INVALID: 400,
  CG_SSH_CA_MISSING: 409,
  CG_SSH_GRANT_UNKNOWN: 404,
};

/** A CA failure as the API answers it. */
export function asHttp(e: unknown): unknown {
  if (e instanceof SshCaError)
    return new HttpError(
      STATUS[e.code] ?? 500,
      e.where ?? null,
      e.hint ? `${e.message}: ${e.hint}` : e.message,
    );
  return e;
}

/** The grant's duration, checked against the maximum; the agent, checked against the scope. */
export function checkGrant(op: Operator, cfg: ShieldConfig, body: GrantBody, maxMs: number): number {
  const ms = parseDuration(body.for);
  if (ms === null || ms < 1000)
    throw new HttpError(400, "for", `a duration such as 30s, 15m or 2h, not "${body.for}"`);
  if (ms > maxMs)
    throw new HttpError(
      400,
      "for",
      `${body.for} is more than the most a grant may last (${maxMs / 60_000} minutes)`,
    );
  // Out of scope reads as unknown: a scoped operator does not learn the agent exists.
  if (!visibleAgent(op, cfg, body.agent))
    throw new ControlError(404, "agent", `unknown agent "${body.agent}"`);
  return ms;
}

/** The grants the operator sees (their fleets' agents), newest first, with their state now. */
export function listGrants(
  op: Operator,
  cfg: ShieldConfig,
  grants: Grant[],
  now = Date.now(),
): Array<Grant & { state: string }> {
  // A revoked agent's grants stay listed for an operator of every fleet only.
  return grants
    .filter((g) => op.fleets === null || visibleAgent(op, cfg, g.agent))
    .map((g) => ({ ...g, state: grantState(g, now) }))
    .reverse();
}

/** The grant with this serial, if the operator may see it; else a 404, as for a serial unknown. */
export async function grantFor(op: Operator, cfg: ShieldConfig, ca: SshCa, serial: number): Promise<Grant> {
  const g = (await ca.grants()).find((x) => x.serial === serial);
  if (!g || (op.fleets !== null && !visibleAgent(op, cfg, g.agent)))
    throw new HttpError(404, "serial", `no grant with serial ${serial}`);
  return g;
}
