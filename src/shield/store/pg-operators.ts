/**
 * Operators in the shared store: added and removed through any node's API, each change a policy
 * edit (a new revision, NOTIFY), so every node authenticates a new operator, and refuses a
 * removed one, as soon as it applies that revision. The checks are the config's: a unique name
 * and token, and fleets that exist.
 */
import { ControlError } from "../admin/control.js";
import { OPERATOR_NAME, type OperatorConfig } from "../config-operators.js";
import { edit } from "./pg-policy.js";
import { POLICY_CHANNEL, transaction } from "./schema.js";
import type pg from "pg";

export async function addOperator(pool: pg.Pool, o: OperatorConfig): Promise<{ revision: number }> {
  if (!OPERATOR_NAME.test(o.name))
    throw new ControlError(400, "name", `operator name "${o.name}" must match ${OPERATOR_NAME.source}`);
  return edit(pool, async (c) => {
    const same = await c.query<{ name: string; token: boolean }>(
      "SELECT name, token_sha256 = $2 AS token FROM clawguard.operators WHERE name = $1 OR token_sha256 = $2",
      [o.name, o.tokenSha256],
    );
    for (const r of same.rows) {
      if (r.name === o.name) throw new ControlError(409, "name", `operator "${o.name}" exists already`);
      // Two people with one token are one person to the log.
      if (r.token) throw new ControlError(409, "token_sha256", `operator "${r.name}" has this token already`);
    }
    if (o.fleets !== null) {
      const known = await c.query<{ name: string }>(
        "SELECT name FROM clawguard.fleets WHERE name = ANY($1::text[])",
        [o.fleets],
      );
      const have = new Set(known.rows.map((r) => r.name));
      const missing = o.fleets.find((f) => !have.has(f));
      if (missing !== undefined)
        throw new ControlError(400, "fleets", `fleet "${missing}" is not defined under fleets`);
    }
    await c.query(
      "INSERT INTO clawguard.operators (name, role, token_sha256, fleets) VALUES ($1, $2, $3, $4)",
      [o.name, o.role, o.tokenSha256, o.fleets],
    );
    return {};
  });
}

export async function removeOperator(pool: pg.Pool, name: string): Promise<{ revision: number }> {
  return edit(pool, async (c) => {
    const r = await c.query("DELETE FROM clawguard.operators WHERE name = $1", [name]);
    if (r.rowCount === 0) throw new ControlError(404, "name", `no operator "${name}"`);
    return {};
  });
}

/**
 * A store seeded before operators were shared has none: the first node to start against it
 * brings its file's, once (a later removal is never undone by a restart). Operators scoped to
 * fleets the store lacks are left out and named. Null when the store had them already.
 */
export async function seedOperators(
  pool: pg.Pool,
  operators: readonly OperatorConfig[],
): Promise<{ added: string[]; skipped: string[] } | null> {
  return transaction(pool, async (c) => {
    const p = await c.query<{ seeded: boolean }>(
      "SELECT operators_seeded AS seeded FROM clawguard.policy WHERE one FOR UPDATE",
    );
    if (!p.rows[0] || p.rows[0].seeded) return null;
    const fleets = new Set(
      (await c.query<{ name: string }>("SELECT name FROM clawguard.fleets")).rows.map((r) => r.name),
    );
    const added: string[] = [];
    const skipped: string[] = [];
    for (const o of operators) {
      if (o.fleets !== null && !o.fleets.every((f) => fleets.has(f))) {
        skipped.push(o.name);
        continue;
      }
      const r = await c.query(
        "INSERT INTO clawguard.operators (name, role, token_sha256, fleets) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [o.name, o.role, o.tokenSha256, o.fleets],
      );
      if ((r.rowCount ?? 0) > 0) added.push(o.name);
    }
    const r = await c.query<{ revision: string }>(
      "UPDATE clawguard.policy SET operators_seeded = true, revision = revision + 1 WHERE one RETURNING revision",
    );
    await c.query("SELECT pg_notify($1, $2)", [POLICY_CHANNEL, r.rows[0]!.revision]);
    return { added, skipped };
  });
}
