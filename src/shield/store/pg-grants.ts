/**
 * SSH grants shared through the store. The CA's private key stays on the node(s) that hold it:
 * only they sign. The grant list, the revoked serials and the KRL itself are in the store, so a
 * grant made on one node is listed on every node, and any node revokes it: the revoking node
 * writes the new KRL (it needs only the CA's public key, kept in the store) in the transaction
 * that marks the grant revoked. Every node copies the store's KRL into its own `ssh-ca/krl`
 * within KRL_POLL_MS, and serves it from there (through an outage too).
 *
 * Serials and KRL versions are handed out under a lock of the one KRL row, so they are unique
 * and rising across nodes: an agent refuses a KRL older than the one it has, whichever node it
 * fetches from.
 */
import type pg from "pg";
import {
  SshCaError,
  makeKrl,
  type Grant,
  type GrantAuthority,
  type GrantRequest,
  type SshCa,
} from "../ssh/ca.js";
import { transaction } from "./schema.js";

/** How often a node looks for a newer KRL in the store; agents fetch every 60 s. */
export const KRL_POLL_MS = 2000;

interface KrlRow {
  ca_public_key: string;
  version: string;
  krl: Buffer | null;
}

function readGrant(r: Record<string, unknown>): Grant {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    serial: Number(r.serial),
    agent: String(r.agent),
    principal: String(r.principal),
    user: (r.user_name as string | null) ?? null,
    operator: String(r.operator),
    keyId: String(r.key_id),
    fingerprint: String(r.fingerprint),
    validAfter: Number(r.valid_after),
    validBefore: Number(r.valid_before),
    noForwarding: Boolean(r.no_forwarding),
    reason: (r.reason as string | null) ?? null,
    revokedAt: n(r.revoked_at),
    revokedBy: (r.revoked_by as string | null) ?? null,
  };
}

const INSERT_GRANT = `INSERT INTO clawguard.ssh_grants (serial, agent, principal, user_name, operator, key_id,
  fingerprint, valid_after, valid_before, no_forwarding, reason, revoked_at, revoked_by)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`;

const grantRow = (g: Grant) => [
  g.serial,
  g.agent,
  g.principal,
  g.user,
  g.operator,
  g.keyId,
  g.fingerprint,
  g.validAfter,
  g.validBefore,
  g.noForwarding,
  g.reason,
  g.revokedAt,
  g.revokedBy,
];

export class SharedSshCa implements GrantAuthority {
  private timer: NodeJS.Timeout | null = null;
  /** The version of the KRL in this node's ssh-ca/krl. */
  private local = 0;
  private following: Promise<void> | null = null;
  private failing: string | null = null;

  constructor(
    private readonly pool: pg.Pool,
    readonly ca: SshCa,
    private readonly node: string,
    private readonly warn: (m: string) => void,
  ) {}

  /**
   * A node holding the CA key puts its public key in the store and brings the grants it made
   * alone (revocations win: a serial revoked anywhere stays revoked). Then every node follows.
   */
  async start(): Promise<void> {
    this.local = await this.ca.krlVersion().catch(() => 0);
    const holds = await this.ca.check().then(
      () => true,
      () => false,
    );
    if (holds)
      await this.register(await this.ca.grants()).catch((e: unknown) =>
        this.warn(`SSH grants: ${e instanceof Error ? e.message : String(e)}`),
      );
    await this.follow();
    this.timer = setInterval(() => void this.follow(), KRL_POLL_MS);
    this.timer.unref();
  }

  /** The key the store's grants are signed by, else this node's own CA's. */
  async caPublicKey(): Promise<string | null> {
    const r = await this.pool
      .query<{ ca_public_key: string }>("SELECT ca_public_key FROM clawguard.ssh_krl WHERE one")
      .catch(() => null);
    return r?.rows[0]?.ca_public_key.trim() ?? (await this.ca.caPublicKey());
  }

  private async register(local: Grant[]): Promise<void> {
    const pub = await this.ca.publicKey();
    await transaction(this.pool, async (c) => {
      const row = await this.lockKrl(c, pub);
      let changed = false;
      for (const g of local) {
        const r = await c.query(
          `${INSERT_GRANT} ON CONFLICT (serial) DO UPDATE SET revoked_at = EXCLUDED.revoked_at, revoked_by = EXCLUDED.revoked_by
           WHERE clawguard.ssh_grants.revoked_at IS NULL AND EXCLUDED.revoked_at IS NOT NULL`,
          grantRow(g),
        );
        changed ||= (r.rowCount ?? 0) > 0;
      }
      // A KRL this node served alone may be newer than the store's: the next must pass it.
      if (changed || row.krl === null || this.local >= Number(row.version))
        await this.writeKrl(c, row, Math.max(this.local, Number(row.version)) + 1);
    });
  }

  /** The KRL row, locked; made with this CA's public key if there is none yet. */
  private async lockKrl(c: pg.PoolClient, pub: string | null): Promise<KrlRow> {
    if (pub !== null)
      await c.query(
        "INSERT INTO clawguard.ssh_krl (ca_public_key, version, written_by) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING",
        [pub, this.node],
      );
    const r = await c.query<KrlRow>(
      "SELECT ca_public_key, version, krl FROM clawguard.ssh_krl WHERE one FOR UPDATE",
    );
    const row = r.rows[0];
    if (!row)
      throw new SshCaError("CG_SSH_GRANT_UNKNOWN", "the store holds no grants yet", { where: "serial" });
    if (pub !== null && row.ca_public_key.trim() !== pub.trim())
      throw new SshCaError(
        "CG_SSH_CA_FAILED",
        `this node's CA (${this.ca.publicKeyFile}) is not the one the store's grants are signed by: refusing to sign`,
        { hint: "copy the fleet's CA (ssh-ca/ca and ca.pub) from a node that holds it" },
      );
    return row;
  }

  /** Write the KRL of every revoked serial, with a version above `floor` and the last one. */
  private async writeKrl(c: pg.PoolClient, row: KrlRow, floor = 0): Promise<void> {
    const revoked = await c.query<{ serial: string }>(
      "SELECT serial FROM clawguard.ssh_grants WHERE revoked_at IS NOT NULL ORDER BY serial",
    );
    const version = Math.max(Date.now(), Number(row.version) + 1, floor);
    const bytes = await makeKrl(
      row.ca_public_key,
      revoked.rows.map((r) => Number(r.serial)),
      version,
    );
    await c.query(
      "UPDATE clawguard.ssh_krl SET version = $1, krl = $2, written_by = $3, written_at = now() WHERE one",
      [version, bytes, this.node],
    );
  }

  async grants(): Promise<Grant[]> {
    const r = await this.pool.query("SELECT * FROM clawguard.ssh_grants ORDER BY serial");
    return r.rows.map(readGrant);
  }

  async sign(req: GrantRequest, now: number = Date.now()): Promise<{ grant: Grant; certificate: string }> {
    // Only a node holding the key signs; say so before touching the store.
    const pub = await this.ca.publicKey();
    return transaction(this.pool, async (c) => {
      await this.lockKrl(c, pub);
      const max = await c.query<{ m: string | null }>("SELECT max(serial) AS m FROM clawguard.ssh_grants");
      const out = await this.ca.signAs(req, Number(max.rows[0]?.m ?? 0) + 1, now);
      await c.query(INSERT_GRANT, grantRow(out.grant));
      return out;
    });
  }

  /** Revoke on any node: marked, and the new KRL written, in one transaction; served here at once. */
  async revoke(serial: number, by: string, now: number = Date.now()): Promise<Grant> {
    const g = await transaction(this.pool, async (c) => {
      const unknown = () =>
        new SshCaError("CG_SSH_GRANT_UNKNOWN", `no grant with serial ${serial}`, { where: "serial" });
      const row = await this.lockKrl(c, null).catch(() => Promise.reject(unknown()));
      const r = await c.query(
        `UPDATE clawguard.ssh_grants SET revoked_at = coalesce(revoked_at, $2), revoked_by = coalesce(revoked_by, $3)
         WHERE serial = $1 RETURNING *`,
        [serial, now, by],
      );
      if (r.rowCount === 0) throw unknown();
      await this.writeKrl(c, row);
      return readGrant(r.rows[0]);
    });
    await this.follow();
    return g;
  }

  /** Copy the store's KRL here when it is newer than the one in place; one copy at a time. */
  follow(): Promise<void> {
    this.following ??= (async () => {
      try {
        const r = await this.pool.query<{ version: string; krl: Buffer | null }>(
          "SELECT version, krl FROM clawguard.ssh_krl WHERE one AND version > $1 AND krl IS NOT NULL",
          [this.local],
        );
        const row = r.rows[0];
        if (row?.krl) {
          await this.ca.installKrl(row.krl);
          this.local = Number(row.version);
        }
        this.failing = null;
      } catch (e) {
        // The KRL in place stays served; the next poll tries again. Said once, not every poll.
        const why = e instanceof Error ? e.message : String(e);
        if (this.failing !== why) this.warn(`copying the store's SSH KRL: ${why}; serving the one in place`);
        this.failing = why;
      }
    })().finally(() => (this.following = null));
    return this.following;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.following;
  }
}
