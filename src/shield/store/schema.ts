/**
 * The shared store's tables, created and migrated by the shield itself. Every migration runs in
 * one transaction under an advisory lock, so nodes starting together migrate once; a store
 * migrated by a newer clawguard is refused, since this one would misread what it does not know.
 *
 * Policy rows (settings, tiers, fleets, agents, rules, mode_overrides) change only together with
 * a bump of `policy.revision` and a NOTIFY on `clawguard_policy` in the same transaction: nodes
 * listen, and re-read when the revision they hold is older. Operators (v2) are rows of the same
 * kind and follow the same rule. SSH grants (v2) are not policy: they change with the KRL row,
 * which holds the one list every node serves, its version rising with each write.
 */
import type pg from "pg";
import { ClawguardError } from "../../errors.js";

export const STORE_SCHEMA_VERSION = 3;
export const SCHEMA = "clawguard";
export const POLICY_CHANNEL = "clawguard_policy";
/** Any constant: the advisory lock that serialises migrations and partition changes. */
const MIGRATION_LOCK = 0x636c6177;

const V1 = `
CREATE TABLE clawguard.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE clawguard.policy (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  revision bigint NOT NULL,
  seeded_by text NOT NULL,
  seeded_at timestamptz NOT NULL DEFAULT now(),
  mode text NOT NULL,
  budget jsonb
);
CREATE TABLE clawguard.nodes (
  name text PRIMARY KEY,
  first_seen timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  version text NOT NULL,
  proxy text NOT NULL
);
CREATE TABLE clawguard.tiers (name text PRIMARY KEY, budget jsonb);
CREATE TABLE clawguard.fleets (name text PRIMARY KEY, isolation text NOT NULL, mode text, budget jsonb);
CREATE TABLE clawguard.agents (
  id text PRIMARY KEY,
  position bigserial NOT NULL,
  fleet text REFERENCES clawguard.fleets (name),
  tier text REFERENCES clawguard.tiers (name),
  token_sha256 text,
  sources text[],
  mode text,
  budget jsonb,
  -- The node that carries the agent (its WireGuard peer lives there); moved by shield move/drain.
  node text REFERENCES clawguard.nodes (name)
);
-- name is '' for the global level.
CREATE TABLE clawguard.rules (
  level text NOT NULL,
  name text NOT NULL,
  verdict text NOT NULL,
  rule text NOT NULL,
  position bigserial NOT NULL,
  PRIMARY KEY (level, name, verdict, rule)
);
-- id is '' for the global scope.
CREATE TABLE clawguard.mode_overrides (scope text NOT NULL, id text NOT NULL, mode text NOT NULL, PRIMARY KEY (scope, id));
-- Budget counts by window slot: slot = floor(epoch ms / (window_ms / 60)); every node adds to them.
CREATE TABLE clawguard.budget_counts (
  key text NOT NULL,
  window_ms bigint NOT NULL,
  slot bigint NOT NULL,
  requests double precision NOT NULL DEFAULT 0,
  bytes double precision NOT NULL DEFAULT 0,
  PRIMARY KEY (key, window_ms, slot)
);
-- Each node's chain as far as it reached PostgreSQL, and where retention cut it.
CREATE TABLE clawguard.log_heads (
  node text PRIMARY KEY,
  head_id bigint NOT NULL,
  head_hash text NOT NULL,
  head_part_ts bigint NOT NULL,
  checkpoint_id bigint NOT NULL,
  checkpoint_hash text NOT NULL
);
-- part_ts is the largest ts of the node's records up to this one: it never decreases along a
-- node's chain, so dropping the partitions below a time removes a prefix of every chain.
CREATE TABLE clawguard.log_records (
  node text NOT NULL,
  id bigint NOT NULL,
  part_ts bigint NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  ts bigint NOT NULL,
  agent text,
  fleet text,
  tier text,
  source_address text NOT NULL,
  method text NOT NULL,
  host text NOT NULL,
  host_rev text NOT NULL,
  port integer NOT NULL,
  path text,
  decision text NOT NULL,
  rule text,
  reason text NOT NULL,
  upstream_address text,
  bytes_up bigint NOT NULL,
  bytes_down bigint NOT NULL,
  duration_ms bigint NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  PRIMARY KEY (node, id, part_ts)
) PARTITION BY RANGE (part_ts);
CREATE INDEX log_records_ts ON clawguard.log_records (ts);
CREATE INDEX log_records_seq ON clawguard.log_records (seq);
CREATE INDEX log_records_agent ON clawguard.log_records (agent, ts);
CREATE INDEX log_records_host_rev ON clawguard.log_records (host_rev, ts);
`;

/**
 * Operators, agents' WireGuard keys and SSH grants shared. A preshared key's file is named, never
 * read: the key itself stays on the nodes. The CA's private key stays on the nodes that hold it;
 * its public key is here, so any node can write the KRL (which names serials of that key).
 */
const V2 = `
ALTER TABLE clawguard.agents ADD COLUMN wg_public_key text UNIQUE, ADD COLUMN wg_preshared_key_file text;
-- A store seeded under v1 has no operators yet: the first v2 node brings its file's, once.
ALTER TABLE clawguard.policy ADD COLUMN operators_seeded boolean NOT NULL DEFAULT false;
CREATE TABLE clawguard.operators (
  name text PRIMARY KEY,
  position bigserial NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  token_sha256 text NOT NULL UNIQUE,
  -- null: every fleet. Checked against clawguard.fleets by each edit (an array has no foreign key).
  fleets text[]
);
CREATE TABLE clawguard.ssh_grants (
  serial bigint PRIMARY KEY,
  agent text NOT NULL,
  principal text NOT NULL,
  user_name text,
  operator text NOT NULL,
  key_id text NOT NULL,
  fingerprint text NOT NULL,
  valid_after bigint NOT NULL,
  valid_before bigint NOT NULL,
  no_forwarding boolean NOT NULL,
  reason text,
  revoked_at bigint,
  revoked_by text
);
-- The KRL every node serves, and the CA public key it is made for. Grants and revocations lock
-- this row, so serials and versions are handed out one at a time across nodes.
CREATE TABLE clawguard.ssh_krl (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  ca_public_key text NOT NULL,
  version bigint NOT NULL,
  krl bytea,
  written_by text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now()
);
`;

/**
 * The log's indexes, cheaper to keep: every shipped record updates each of them, and keeping
 * them was most of PostgreSQL's work per record. The text columns they compare (node, agent,
 * host_rev) compare bytes (COLLATE "C") instead of going through the locale; a byte order is also
 * what the host_rev prefix range of a wildcard assumes. Records without an agent stay out of the
 * agent index. The rows stay where they are (a collation is no change of type); the indexes on
 * those columns are built again from them, in this transaction.
 *
 * The arrival sequence keeps its B-tree: it only grows, so each insert lands on the rightmost
 * page, and a BRIN index in its place saved nothing measurable while leaving the newest block
 * ranges, the only ones a follower reads, unsummarised until a vacuum.
 */
const V3 = `
DROP INDEX clawguard.log_records_agent;
ALTER TABLE clawguard.log_records
  ALTER COLUMN node TYPE text COLLATE "C",
  ALTER COLUMN agent TYPE text COLLATE "C",
  ALTER COLUMN host_rev TYPE text COLLATE "C";
CREATE INDEX log_records_agent ON clawguard.log_records (agent, ts) WHERE agent IS NOT NULL;
`;

/** Migrations by the version they lead to; each runs once, in order. */
const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  { version: 1, sql: V1 },
  { version: 2, sql: V2 },
  { version: 3, sql: V3 },
];

export async function schemaVersion(db: pg.ClientBase | pg.Pool): Promise<number> {
  const t = await db.query<{ present: boolean }>(
    "SELECT to_regclass('clawguard.schema_version') IS NOT NULL AS present",
  );
  if (!t.rows[0]?.present) return 0;
  const r = await db.query<{ v: number | null }>("SELECT max(version) AS v FROM clawguard.schema_version");
  return r.rows[0]?.v ?? 0;
}

export function newerSchema(version: number, where: string, known = STORE_SCHEMA_VERSION): ClawguardError {
  return new ClawguardError(
    "CG_STORE_SCHEMA_NEWER",
    `the store at ${where} has schema version ${version}; this clawguard knows up to ${known}`,
    { where: "store.postgres", hint: "upgrade clawguard on this node to the version the other nodes run" },
  );
}

/**
 * Create or bring the tables up to STORE_SCHEMA_VERSION; refuse a newer schema. `upTo` is what
 * an older clawguard knew (a store as it left one, for the tests of migrations and refusals).
 */
export async function migrate(pool: pg.Pool, where: string, upTo = STORE_SCHEMA_VERSION): Promise<void> {
  await withSchemaLock(pool, async (c) => {
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    const version = await schemaVersion(c);
    if (version > upTo) throw newerSchema(version, where, upTo);
    for (const m of MIGRATIONS) {
      if (m.version <= version || m.version > upTo) continue;
      await c.query(m.sql);
      await c.query("INSERT INTO clawguard.schema_version (version) VALUES ($1)", [m.version]);
    }
  });
}

/** Run `fn` in one transaction holding the lock that partition changes share with migrations. */
export async function withSchemaLock<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return transaction(pool, async (c) => {
    await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    return fn(c);
  });
}

/**
 * A client of the pool for a while. Between its queries a client that loses its server emits
 * "error", and the pool listens only to idle ones: without this, an outage would throw.
 */
export async function checkout(pool: pg.Pool): Promise<pg.PoolClient & { done(broken?: boolean): void }> {
  const client = await pool.connect();
  const ignore = () => undefined;
  client.on("error", ignore);
  return Object.assign(client, {
    done(broken = false) {
      client.off("error", ignore);
      client.release(broken);
    },
  });
}

export async function transaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await checkout(pool);
  try {
    await client.query("BEGIN");
    const out = await fn(client);
    await client.query("COMMIT");
    client.done();
    return out;
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    // A client whose transaction failed may have lost its server: never hand it out again.
    client.done(true);
    throw e;
  }
}
