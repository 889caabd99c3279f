/**
 * `operators:` in shield.yaml: the people who steer a shield through its admin API, each with
 * a role and a scope. Only a token's SHA-256 is stored, as for agents.
 *
 *   operators:
 *     - { name: alice, role: admin, token_sha256: "..." }           # everything, operators too
 *     - { name: bob, role: operator, fleets: [acme], token_sha256: "..." }  # acme only
 *     - { name: carol, role: viewer, token_sha256: "..." }          # reads every fleet
 */
import { z } from "zod";
import type { Segment } from "../yaml/read.js";

export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

export const operatorSchema = z.strictObject({
  name: z.string(),
  role: z.enum(ROLES),
  token_sha256: z.string(),
  /** The fleets this operator sees and steers; absent: every fleet (and agents in none). */
  fleets: z.array(z.string()).optional(),
});

export type RawOperator = z.infer<typeof operatorSchema>;

export interface OperatorConfig {
  name: string;
  role: Role;
  /** Lowercase hex sha256 of the operator's token. */
  tokenSha256: string;
  /** null: every fleet. */
  fleets: string[] | null;
}

export const OPERATOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The name the admin token file's holder goes by: an admin over everything. */
export const TOKEN_FILE_OPERATOR = "admin";

export function operatorsConfig(
  raw: RawOperator[],
  fleets: ReadonlySet<string>,
  fail: (segs: Segment[], reason: string) => void,
): OperatorConfig[] {
  const seen = new Map<string, number>();
  const tokens = new Map<string, number>();
  return raw.map((o, i) => {
    const at = (...k: Segment[]) => ["operators", i, ...k];
    if (!OPERATOR_NAME.test(o.name))
      fail(at("name"), `operator name "${o.name}" must match ${OPERATOR_NAME.source}`);
    const first = seen.get(o.name);
    if (first !== undefined) fail(at("name"), `operator "${o.name}" is already operators[${first}]`);
    seen.set(o.name, i);
    const token = o.token_sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(token))
      fail(at("token_sha256"), "must be 64 hex characters: the sha256 of the token, never the token");
    const other = tokens.get(token);
    // Two people with one token are one person to the log: every change must name who made it.
    if (other !== undefined) fail(at("token_sha256"), `operators[${other}] has this token already`);
    tokens.set(token, i);
    if (o.fleets !== undefined) {
      if (o.fleets.length === 0)
        fail(at("fleets"), "an empty list would see nothing; remove it to see every fleet");
      o.fleets.forEach((f, j) => {
        if (!fleets.has(f)) fail(at("fleets", j), `fleet "${f}" is not defined under fleets`);
      });
    }
    return {
      name: o.name,
      role: o.role,
      tokenSha256: token,
      fleets: o.fleets ? [...new Set(o.fleets)] : null,
    };
  });
}
