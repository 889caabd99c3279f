/**
 * Keeps a node's policy in step with the store. A connection of its own LISTENs on the policy
 * channel: every committed edit NOTIFYs its revision, and a node holding an older one re-reads
 * the policy whole and applies it. A poll every 2 s is the safety net for a notification lost
 * with a connection, and the node's heartbeat. While PostgreSQL cannot be reached the node keeps
 * the last policy it applied (it has nothing newer to apply), retries every second, and says so.
 */
import pg from "pg";
import { storeError, type PgSettings } from "./connect.js";
import { heartbeat, readPolicy, readRevision } from "./pg-policy.js";
import type { PolicyDoc } from "./policy-doc.js";
import { migrate, POLICY_CHANNEL } from "./schema.js";
import type { StoreConfig } from "../config-store.js";

const POLL_MS = 2000;
const RETRY_MS = 1000;

export interface SyncHealth {
  reachable: boolean;
  /** ms since the epoch when the store stopped answering; null while it answers. */
  unreachableSince: number | null;
  lastError: string | null;
  /** The revision of the policy in force here. */
  revision: number;
  /** ms since the epoch of the last time the store was read. */
  lastSync: number | null;
}

export interface SyncOptions {
  store: StoreConfig;
  settings: PgSettings;
  pool: pg.Pool;
  node: string;
  version: string;
  /** This node's proxy address, for `shield nodes`. */
  proxy: string;
  /** The revision of the policy the node started with. */
  revision: number;
  /** Apply a newer policy; throwing keeps the one in force (and the error is reported). */
  apply: (doc: PolicyDoc) => void;
  warn: (message: string) => void;
}

export class PolicySync {
  private listener: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private again = false;
  /** A revision that failed to apply: not tried again until a newer one comes. */
  private refused = -1;
  private closed = false;
  private revision: number;
  private reachable: boolean;
  private unreachableSince: number | null;
  private lastError: string | null = null;
  private lastSync: number | null = null;

  constructor(
    private readonly opts: SyncOptions,
    startedReachable: boolean,
  ) {
    this.revision = opts.revision;
    this.reachable = startedReachable;
    this.unreachableSince = startedReachable ? null : Date.now();
    if (startedReachable) this.lastSync = Date.now();
  }

  async start(): Promise<void> {
    await this.tick();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  /** Connect (again) if needed, say this node is alive, and re-read a newer policy. */
  private async tick(): Promise<void> {
    this.timer = null;
    try {
      if (!this.listener) await this.listen();
      await heartbeat(this.opts.pool, this.opts.node, this.opts.version, this.opts.proxy);
      const revision = await readRevision(this.opts.pool);
      this.up();
      if (revision !== null && revision > this.revision) await this.refresh();
    } catch (e) {
      this.down(e);
    }
    this.schedule(this.reachable ? POLL_MS : RETRY_MS);
  }

  private async listen(): Promise<void> {
    // A store that came back may have been migrated meanwhile by a newer node: check first.
    await migrate(this.opts.pool, this.opts.store.postgres);
    const client = new pg.Client({ ...this.opts.settings, keepAlive: true });
    client.on("error", (e) => this.lost(client, e));
    client.on("end", () => this.lost(client, new Error("the listening connection ended")));
    client.on("notification", (n) => {
      if (n.channel === POLICY_CHANNEL && Number(n.payload) > this.revision) void this.refresh();
    });
    await client.connect();
    await client.query(`LISTEN ${POLICY_CHANNEL}`);
    this.listener = client;
  }

  private lost(client: pg.Client, e: Error): void {
    if (this.listener !== client) return;
    this.listener = null;
    void client.end().catch(() => undefined);
    if (this.closed) return;
    this.down(e);
    this.schedule(RETRY_MS);
  }

  /** Read the policy and apply it if it is newer; one read at a time, another after if asked meanwhile. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.again = false;
        let doc: PolicyDoc | null;
        try {
          doc = await readPolicy(this.opts.pool);
          this.up();
        } catch (e) {
          this.down(e);
          continue;
        }
        if (!doc || doc.revision <= this.revision || doc.revision === this.refused) continue;
        try {
          this.opts.apply(doc);
          this.revision = doc.revision;
        } catch (e) {
          // The store answered with a policy this node cannot use: keep the one in force.
          this.refused = doc.revision;
          this.lastError = `revision ${doc.revision} not applied: ${e instanceof Error ? e.message : String(e)}`;
          this.opts.warn(`the store's policy ${this.lastError}; the policy in force stays`);
        }
      } while (this.again);
    })().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private up(): void {
    this.lastSync = Date.now();
    if (this.reachable) return;
    this.reachable = true;
    this.unreachableSince = null;
    this.lastError = null;
    this.opts.warn("the store answers again; following its policy");
  }

  private down(e: unknown): void {
    const message = storeError(e, this.opts.store, "following the policy").message;
    this.lastError = message;
    if (!this.reachable) return;
    this.reachable = false;
    this.unreachableSince = Date.now();
    this.opts.warn(
      `${message}; enforcing the last policy this node had (revision ${this.revision}) until it answers`,
    );
  }

  health(): SyncHealth {
    return {
      reachable: this.reachable,
      unreachableSince: this.unreachableSince,
      lastError: this.lastError,
      revision: this.revision,
      lastSync: this.lastSync,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.refreshing;
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => undefined);
  }
}
