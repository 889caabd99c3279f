/**
 * The shared policy's rows in PostgreSQL: read whole, seeded once from the first node's
 * shield.yaml, and changed one edit at a time. Every edit locks the policy row, checks the edit
 * against what is there, writes it, bumps the revision and sends NOTIFY, all in one transaction:
 * edits from several nodes are serialised, and a node is told of one only once it is committed.
 */
import type pg from "pg";
import { ControlError } from "../admin/control.js";
import type { RuleEdit } from "../admin/rules-file.js";
import { parseRule, RuleError } from "../policy/rules.js";
import type { Mode } from "../types.js";
import type { ModeScopeName } from "../admin/control.js";
import { readBudget, readMode, readOperator, type PolicyDoc, type StoredAgent } from "./policy-doc.js";
import { POLICY_CHANNEL, transaction } from "./schema.js";

/** Nodes that reported within this long count as alive (heartbeats come every few seconds). */
export const ALIVE_MS = 15_000;

export interface NodeView {
  name: string;
  alive: boolean;
  lastSeen: number;
  version: string;
  proxy: string;
  agents: number;
}

export async function readRevision(db: pg.Pool | pg.ClientBase): Promise<number | null> {
  const r = await db.query<{ revision: string }>("SELECT revision FROM clawguard.policy WHERE one");
  return r.rows[0] ? Number(r.rows[0].revision) : null;
}

/** The whole policy as of one snapshot, or null when the store was never seeded. */
export async function readPolicy(pool: pg.Pool): Promise<PolicyDoc | null> {
  return transaction(pool, async (c) => {
    await c.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const p = await c.query("SELECT revision, mode, budget FROM clawguard.policy WHERE one");
    const head = p.rows[0];
    if (!head) return null;
    const tiers = await c.query("SELECT name, budget FROM clawguard.tiers ORDER BY name");
    const fleets = await c.query("SELECT name, isolation, mode, budget FROM clawguard.fleets ORDER BY name");
    const agents = await c.query("SELECT * FROM clawguard.agents ORDER BY position");
    const rules = await c.query("SELECT level, name, verdict, rule FROM clawguard.rules ORDER BY position");
    const overrides = await c.query("SELECT scope, id, mode FROM clawguard.mode_overrides");
    const operators = await c.query(
      "SELECT name, role, token_sha256, fleets FROM clawguard.operators ORDER BY position",
    );
    const doc: PolicyDoc = {
      revision: Number(head.revision),
      mode: readMode(head.mode),
      allow: [],
      deny: [],
      tiers: {},
      fleets: {},
      agents: [],
      operators: operators.rows.map(readOperator),
      overrides: { global: null, fleets: {}, agents: {} },
    };
    const budget = readBudget(head.budget);
    if (budget) doc.budget = budget;
    for (const t of tiers.rows) {
      const b = readBudget(t.budget);
      doc.tiers[t.name] = { allow: [], deny: [], ...(b ? { budget: b } : {}) };
    }
    for (const f of fleets.rows) {
      const b = readBudget(f.budget);
      doc.fleets[f.name] = {
        allow: [],
        deny: [],
        isolation: f.isolation === "fleet" ? "fleet" : "isolated",
        ...(f.mode ? { mode: readMode(f.mode) } : {}),
        ...(b ? { budget: b } : {}),
      };
    }
    const byId = new Map<string, StoredAgent>();
    for (const a of agents.rows) {
      const b = readBudget(a.budget);
      const agent: StoredAgent = {
        id: a.id,
        allow: [],
        deny: [],
        node: a.node,
        ...(a.fleet ? { fleet: a.fleet } : {}),
        ...(a.tier ? { tier: a.tier } : {}),
        ...(a.token_sha256 ? { tokenSha256: a.token_sha256 } : {}),
        ...(a.sources ? { sources: a.sources } : {}),
        ...(a.mode ? { mode: readMode(a.mode) } : {}),
        ...(b ? { budget: b } : {}),
        ...(a.wg_public_key
          ? {
              wireguard: {
                publicKey: a.wg_public_key,
                ...(a.wg_preshared_key_file ? { presharedKeyFile: a.wg_preshared_key_file } : {}),
              },
            }
          : {}),
      };
      byId.set(a.id, agent);
      doc.agents.push(agent);
    }
    for (const r of rules.rows) {
      const verdict = r.verdict === "allow" ? "allow" : "deny";
      const set =
        r.level === "global"
          ? doc
          : r.level === "tier"
            ? doc.tiers[r.name]
            : r.level === "fleet"
              ? doc.fleets[r.name]
              : byId.get(r.name);
      // A rule of a level that is gone would be a rule nobody sees: drop it, as a reload would.
      set?.[verdict].push(r.rule);
    }
    for (const o of overrides.rows) {
      const m = readMode(o.mode);
      if (o.scope === "global") doc.overrides.global = m;
      else if (o.scope === "fleet") doc.overrides.fleets[o.id] = m;
      else doc.overrides.agents[o.id] = m;
    }
    return doc;
  });
}

/**
 * Write `doc` into an empty store. If another node seeded it first, nothing is written and
 * false comes back: the store's policy is then the one in force.
 */
export async function seedPolicy(pool: pg.Pool, doc: PolicyDoc, node: string): Promise<boolean> {
  return transaction(pool, async (c) => {
    const inserted = await c.query(
      "INSERT INTO clawguard.policy (one, revision, seeded_by, mode, budget, operators_seeded) VALUES (true, 1, $1, $2, $3, true) ON CONFLICT DO NOTHING",
      [node, doc.mode, doc.budget ?? null],
    );
    if (inserted.rowCount === 0) return false;
    const rules: Array<[string, string, string, string]> = [];
    const addRules = (level: string, name: string, set: { allow: string[]; deny: string[] }) => {
      for (const verdict of ["allow", "deny"] as const)
        for (const r of set[verdict]) rules.push([level, name, verdict, r]);
    };
    addRules("global", "", doc);
    for (const [name, t] of Object.entries(doc.tiers)) {
      await c.query("INSERT INTO clawguard.tiers (name, budget) VALUES ($1, $2)", [name, t.budget ?? null]);
      addRules("tier", name, t);
    }
    for (const [name, f] of Object.entries(doc.fleets)) {
      await c.query("INSERT INTO clawguard.fleets (name, isolation, mode, budget) VALUES ($1, $2, $3, $4)", [
        name,
        f.isolation,
        f.mode ?? null,
        f.budget ?? null,
      ]);
      addRules("fleet", name, f);
    }
    for (const a of doc.agents) {
      await c.query(
        "INSERT INTO clawguard.agents (id, fleet, tier, token_sha256, sources, mode, budget, node, wg_public_key, wg_preshared_key_file) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
          a.id,
          a.fleet ?? null,
          a.tier ?? null,
          a.tokenSha256 ?? null,
          a.sources ?? null,
          a.mode ?? null,
          a.budget ?? null,
          a.node,
          a.wireguard?.publicKey ?? null,
          a.wireguard?.presharedKeyFile ?? null,
        ],
      );
      addRules("agent", a.id, a);
    }
    for (const o of doc.operators)
      await c.query(
        "INSERT INTO clawguard.operators (name, role, token_sha256, fleets) VALUES ($1, $2, $3, $4)",
        [o.name, o.role, o.tokenSha256, o.fleets],
      );
    if (rules.length > 0)
      await c.query(
        "INSERT INTO clawguard.rules (level, name, verdict, rule) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
        [rules.map((r) => r[0]), rules.map((r) => r[1]), rules.map((r) => r[2]), rules.map((r) => r[3])],
      );
    await c.query(`NOTIFY ${POLICY_CHANNEL}, '1'`);
    return true;
  });
}

/** Run one edit of the policy: serialised with every other, with a new revision and NOTIFY on commit. */
export async function edit<T>(
  pool: pg.Pool,
  fn: (c: pg.PoolClient) => Promise<T>,
): Promise<T & { revision: number }> {
  return transaction(pool, async (c) => {
    const locked = await c.query("SELECT revision FROM clawguard.policy WHERE one FOR UPDATE");
    if (locked.rowCount === 0) throw new ControlError(409, null, "the store holds no policy yet");
    const out = await fn(c);
    const r = await c.query<{ revision: string }>(
      "UPDATE clawguard.policy SET revision = revision + 1 WHERE one RETURNING revision",
    );
    const revision = Number(r.rows[0]!.revision);
    await c.query(`SELECT pg_notify($1, $2)`, [POLICY_CHANNEL, String(revision)]);
    return { ...out, revision };
  });
}

async function levelExists(c: pg.PoolClient, e: RuleEdit): Promise<void> {
  if (e.level === "global") return;
  if (e.name === undefined || e.name === "")
    throw new ControlError(400, "name", `a ${e.level} rule needs a name`);
  const table = e.level === "tier" ? "tiers" : e.level === "fleet" ? "fleets" : "agents";
  const key = e.level === "agent" ? "id" : "name";
  const r = await c.query(`SELECT 1 FROM clawguard.${table} WHERE ${key} = $1`, [e.name]);
  if (r.rowCount === 0) throw new ControlError(404, "name", `unknown ${e.level} "${e.name}"`);
}

export async function editRule(
  pool: pg.Pool,
  e: RuleEdit,
  op: "add" | "remove",
): Promise<{ revision: number }> {
  const rule = e.rule.trim();
  try {
    parseRule(rule);
  } catch (err) {
    throw new ControlError(400, "rule", err instanceof RuleError ? err.message : String(err));
  }
  const where = `${e.level}${e.name !== undefined ? ` ${e.name}` : ""}`;
  return edit(pool, async (c) => {
    await levelExists(c, e);
    const key = [e.level, e.level === "global" ? "" : e.name, e.verdict, rule];
    if (op === "add") {
      const r = await c.query(
        "INSERT INTO clawguard.rules (level, name, verdict, rule) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        key,
      );
      if (r.rowCount === 0)
        throw new ControlError(409, "rule", `${e.verdict} ${rule} is already a rule of ${where}`);
    } else {
      const r = await c.query(
        "DELETE FROM clawguard.rules WHERE level = $1 AND name = $2 AND verdict = $3 AND rule = $4",
        key,
      );
      if (r.rowCount === 0)
        throw new ControlError(404, "rule", `${where} has no ${e.verdict} rule "${rule}"`);
    }
    return {};
  });
}

export async function setMode(
  pool: pg.Pool,
  scope: ModeScopeName,
  id: string | undefined,
  mode: Mode | null,
): Promise<{ revision: number }> {
  return edit(pool, async (c) => {
    const key = [scope, scope === "global" ? "" : (id ?? "")];
    if (mode === null)
      await c.query("DELETE FROM clawguard.mode_overrides WHERE scope = $1 AND id = $2", key);
    else
      await c.query(
        "INSERT INTO clawguard.mode_overrides (scope, id, mode) VALUES ($1, $2, $3) ON CONFLICT (scope, id) DO UPDATE SET mode = EXCLUDED.mode",
        [...key, mode],
      );
    return {};
  });
}

/** Revoke an agent everywhere: its row, its rules and its mode switch go in one edit. */
export async function removeAgent(pool: pg.Pool, id: string): Promise<{ revision: number }> {
  return edit(pool, async (c) => {
    const r = await c.query("DELETE FROM clawguard.agents WHERE id = $1", [id]);
    if (r.rowCount === 0) throw new ControlError(404, "id", `unknown agent "${id}"`);
    await c.query("DELETE FROM clawguard.rules WHERE level = 'agent' AND name = $1", [id]);
    await c.query("DELETE FROM clawguard.mode_overrides WHERE scope = 'agent' AND id = $1", [id]);
    return {};
  });
}

/** Say this node is alive (and register it the first time). */
export async function heartbeat(pool: pg.Pool, node: string, version: string, proxy: string): Promise<void> {
  await pool.query(
    `INSERT INTO clawguard.nodes (name, version, proxy) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET last_seen = now(), version = EXCLUDED.version, proxy = EXCLUDED.proxy`,
    [node, version, proxy],
  );
}

export async function listNodes(db: pg.Pool | pg.ClientBase): Promise<NodeView[]> {
  const r = await db.query(
    `SELECT n.name, n.version, n.proxy, (extract(epoch FROM n.last_seen) * 1000)::bigint AS last_seen,
            now() - n.last_seen < make_interval(secs => $1::double precision / 1000) AS alive,
            (SELECT count(*) FROM clawguard.agents a WHERE a.node = n.name) AS agents
     FROM clawguard.nodes n ORDER BY n.name`,
    [ALIVE_MS],
  );
  return r.rows.map((n) => ({
    name: n.name,
    alive: n.alive,
    lastSeen: Number(n.last_seen),
    version: n.version,
    proxy: n.proxy,
    agents: Number(n.agents),
  }));
}

/** Give `agent` to node `to`, which must be alive: an agent moved to a dead node has nowhere to go. */
export async function moveAgent(
  pool: pg.Pool,
  agent: string,
  to: string,
): Promise<{ revision: number; from: string | null }> {
  return edit(pool, async (c) => {
    const target = (await listNodes(c)).find((n) => n.name === to);
    if (!target) throw new ControlError(404, "to", `unknown node "${to}" (shield nodes lists them)`);
    if (!target.alive)
      throw new ControlError(
        409,
        "to",
        `node "${to}" has not reported for ${Math.round((Date.now() - target.lastSeen) / 1000)} s; move agents to a live node`,
      );
    const r = await c.query<{ from: string | null }>(
      "UPDATE clawguard.agents a SET node = $2 FROM (SELECT id, node FROM clawguard.agents WHERE id = $1 FOR UPDATE) prev WHERE a.id = prev.id RETURNING prev.node AS from",
      [agent, to],
    );
    if (r.rowCount === 0) throw new ControlError(404, "agent", `unknown agent "${agent}"`);
    return { from: r.rows[0]!.from };
  });
}

/**
 * Move every agent of `node` to the other live nodes, each to the one carrying the fewest at
 * that moment, so a drained node's agents spread evenly.
 */
export async function drainNode(
  pool: pg.Pool,
  node: string,
): Promise<{ revision: number; moved: Array<{ agent: string; to: string }> }> {
  return edit(pool, async (c) => {
    const nodes = await listNodes(c);
    if (!nodes.some((n) => n.name === node))
      throw new ControlError(404, "node", `unknown node "${node}" (shield nodes lists them)`);
    const targets = nodes.filter((n) => n.alive && n.name !== node);
    const agents = await c.query<{ id: string }>(
      "SELECT id FROM clawguard.agents WHERE node = $1 ORDER BY position FOR UPDATE",
      [node],
    );
    if (agents.rowCount === 0) return { moved: [] };
    if (targets.length === 0)
      throw new ControlError(409, "node", `no other live node to take the agents of "${node}"`);
    const moved: Array<{ agent: string; to: string }> = [];
    for (const { id } of agents.rows) {
      targets.sort((a, b) => a.agents - b.agents || a.name.localeCompare(b.name));
      const to = targets[0]!;
      to.agents += 1;
      moved.push({ agent: id, to: to.name });
    }
    await c.query(
      "UPDATE clawguard.agents a SET node = m.node FROM unnest($1::text[], $2::text[]) AS m(id, node) WHERE a.id = m.id",
      [moved.map((m) => m.agent), moved.map((m) => m.to)],
    );
    return { moved };
  });
}
