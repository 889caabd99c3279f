/**
 * `shield enroll` on a shield that shares a store: the agent joins the store, not shield.yaml,
 * carried by this node (`node:`), with its WireGuard public key and its preshared key file's
 * path. Every node applies it within a second; `shield move` and `drain` carry the key along.
 * Addresses are allocated against every agent in the store, in the edit's transaction, so two
 * nodes enrolling at once never hand out one address twice. The preshared key itself stays in
 * this node's file: a node the agent is moved to needs a copy at the same path.
 */
import { rm } from "node:fs/promises";
import pg from "pg";
import type { AgentConfig, ShieldConfig } from "../config.js";
import { ControlError } from "../admin/control.js";
import { pgSettings, storeError } from "../store/connect.js";
import { edit, removeAgent } from "../store/pg-policy.js";
import { writePresharedKey } from "./enroll.js";
import { CLI_SPELLING, EnrollError, planEnrolment, type EnrolPlan, type EnrolRequest } from "./enrolment.js";

const AGENT_COLUMNS = "id, fleet, tier, sources, wg_public_key, wg_preshared_key_file";

interface AgentRow {
  id: string;
  fleet: string | null;
  tier: string | null;
  sources: string[] | null;
  wg_public_key: string | null;
  wg_preshared_key_file: string | null;
}

/** What enrolment decides by, of a stored agent: its identity and its WireGuard entry. */
function agentOfRow(r: AgentRow): AgentConfig {
  return {
    id: r.id,
    allow: [],
    deny: [],
    ...(r.fleet ? { fleet: r.fleet } : {}),
    ...(r.tier ? { tier: r.tier } : {}),
    ...(r.sources ? { sources: r.sources } : {}),
    ...(r.wg_public_key
      ? {
          wireguard: {
            publicKey: r.wg_public_key,
            ...(r.wg_preshared_key_file ? { presharedKeyFile: r.wg_preshared_key_file } : {}),
          },
        }
      : {}),
  };
}

export async function enrollShared(
  cfg: ShieldConfig,
  o: EnrolRequest,
  psk: string | undefined,
): Promise<{ plan: EnrolPlan; pskFile?: string }> {
  const pool = new pg.Pool({ ...(await pgSettings(cfg.store!)), max: 1 });
  pool.on("error", () => undefined);
  let pskFile: string | undefined;
  try {
    const result = await edit(pool, async (c) => {
      const known = await c.query("SELECT 1 FROM clawguard.nodes WHERE name = $1", [cfg.node]);
      if (known.rowCount === 0)
        throw new EnrollError(
          `node "${cfg.node}" has not joined the store yet: start its shield once, then enrol agents on it`,
        );
      const rows = await c.query<AgentRow>(`SELECT ${AGENT_COLUMNS} FROM clawguard.agents ORDER BY position`);
      const agents = rows.rows.map(agentOfRow);
      // The same decision as for shield.yaml, against every agent in the store.
      const { plan, edit: change } = planEnrolment({ ...cfg, agents }, o, CLI_SPELLING);
      if (change.kind === "setKey") {
        await c.query("UPDATE clawguard.agents SET wg_public_key = $2 WHERE id = $1", [o.id, o.publicKey]);
        return plan;
      }
      for (const [what, name] of [
        ["fleets", o.fleet],
        ["tiers", o.tier],
      ] as const) {
        if (name === undefined) continue;
        const r = await c.query(`SELECT 1 FROM clawguard.${what} WHERE name = $1`, [name]);
        if (r.rowCount === 0)
          throw new EnrollError(`--${what.slice(0, -1)}: no ${what.slice(0, -1)} "${name}" in the store`);
      }
      if (psk !== undefined && o.presharedKeyFile !== undefined)
        pskFile = await writePresharedKey(o.presharedKeyFile, psk);
      await c.query(
        "INSERT INTO clawguard.agents (id, fleet, tier, sources, node, wg_public_key, wg_preshared_key_file) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [o.id, o.fleet ?? null, o.tier ?? null, plan.addresses, cfg.node, o.publicKey, pskFile ?? null],
      );
      return plan;
    });
    return { plan: result, ...(pskFile ? { pskFile } : {}) };
  } catch (e) {
    if (pskFile !== undefined) await rm(pskFile, { force: true });
    if (e instanceof EnrollError) throw e;
    if (e instanceof ControlError) throw new EnrollError(e.message);
    throw storeError(e, cfg.store!, `enrolling agent ${o.id}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/**
 * `shield revoke` on a shield that shares a store: the agent leaves the store (its rules and
 * mode switches with it), and every node drops it within a second. Returns the agent as the
 * store had it, for the peer and the preshared key this node still holds.
 */
export async function revokeShared(cfg: ShieldConfig, id: string): Promise<AgentConfig> {
  const pool = new pg.Pool({ ...(await pgSettings(cfg.store!)), max: 1 });
  pool.on("error", () => undefined);
  try {
    const rows = await pool.query<AgentRow>(`SELECT ${AGENT_COLUMNS} FROM clawguard.agents WHERE id = $1`, [
      id,
    ]);
    const r = rows.rows[0];
    if (!r) throw new EnrollError(`no agent "${id}" in the store`);
    await removeAgent(pool, id);
    return agentOfRow(r);
  } catch (e) {
    if (e instanceof EnrollError) throw e;
    if (e instanceof ControlError) throw new EnrollError(e.message);
    throw storeError(e, cfg.store!, `revoking agent ${id}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
}
