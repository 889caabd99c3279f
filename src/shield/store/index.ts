/**
 * The shield's stores behind one face. Policy, state (mode switches, budget counts) and the log
 * live in PostgreSQL when `store.postgres` is set, shared by every node; otherwise in files
 * beside the shield (shield.yaml, the modes file, SQLite), as a single shield always kept them.
 * This opens the shared one at start: migrated, seeded from shield.yaml if it is empty, and read.
 * A store that cannot be reached at start is an error, unless this node has run against it
 * before: it then starts with the last policy it had, as it would keep it through an outage.
 */
import type pg from "pg";
import type { ShieldConfig } from "../config.js";
import type { StoreConfig } from "../config-store.js";
import { ClawguardError } from "../../errors.js";
import { SHIELD_VERSION } from "../version.js";
import { BudgetShare } from "./budget-share.js";
import { isUnreachable, openPool, pgSettings, storeError, type PgSettings } from "./connect.js";
import { LogShipper, type ShipHealth } from "./log-ship.js";
import { dropDaysBefore, DAY_MS } from "./pg-log.js";
import { PgBudgetCounts } from "./pg-budgets.js";
import { heartbeat, readPolicy, seedPolicy } from "./pg-policy.js";
import { seedOperators } from "./pg-operators.js";
import { docFromJson, docToJson, samePolicy, seedFrom, type PolicyDoc } from "./policy-doc.js";
import { migrate } from "./schema.js";
import { SqliteState, statePath } from "./sqlite-state.js";
import { PolicySync, type SyncHealth } from "./sync.js";

export { statePath, SqliteState } from "./sqlite-state.js";
export { BudgetShare } from "./budget-share.js";
export { withPolicy, samePolicy, type PolicyDoc } from "./policy-doc.js";

export interface StoreHealth {
  kind: "postgres";
  node: string;
  reachable: boolean;
  unreachableSince: number | null;
  lastError: string | null;
  revision: number;
  lastSync: number | null;
  log: ShipHealth | null;
  budgets: { lastMerge: number | null; lastError: string | null };
}

const RETENTION_EVERY_MS = 3_600_000;

export class SharedStore {
  readonly budgets: BudgetShare;
  private shipper: LogShipper | null = null;
  private sync: PolicySync | null = null;
  private retention: NodeJS.Timeout | null = null;

  private constructor(
    readonly store: StoreConfig,
    readonly node: string,
    readonly settings: PgSettings,
    readonly pool: pg.Pool,
    readonly state: SqliteState,
    /** The policy the node starts with. */
    readonly doc: PolicyDoc,
    /** False when PostgreSQL did not answer and the node starts from its cached policy. */
    readonly startedReachable: boolean,
  ) {
    this.budgets = new BudgetShare(new PgBudgetCounts(pool));
  }

  static async open(cfg: ShieldConfig, warn: (m: string) => void): Promise<SharedStore> {
    const store = cfg.store!;
    const node = cfg.node!;
    const settings = await pgSettings(store);
    const pool = openPool(settings);
    const state = new SqliteState(statePath(cfg.log.path));
    let doc: PolicyDoc;
    let reachable = true;
    try {
      await migrate(pool, store.postgres);
      await heartbeat(pool, node, SHIELD_VERSION, `${cfg.listen.host}:${cfg.listen.port}`);
      const seeded = await readPolicy(pool);
      if (seeded === null && (await seedPolicy(pool, seedFrom(cfg, node), node)))
        warn(`seeded the store with the policy of ${cfg.file}; from now on the store holds it`);
      const ops = await seedOperators(pool, cfg.operators);
      if (ops)
        warn(
          `the store had no operators yet: added ${ops.added.length ? ops.added.join(", ") : "none"} from ${cfg.file}` +
            (ops.skipped.length
              ? `; left out ${ops.skipped.join(", ")} (fleets the store does not have)`
              : ""),
        );
      doc = (await readPolicy(pool))!;
    } catch (e) {
      const cached = state.cachedPolicy();
      if (!isUnreachable(e) || cached === null) {
        await pool.end().catch(() => undefined);
        await state.close();
        const err = storeError(e, store, "starting");
        throw cached === null && err.code === "CG_STORE_UNREACHABLE"
          ? new ClawguardError(
              err.code,
              `${err.reason}; node ${node} never ran against it, so it has no policy to start with`,
              {
                where: err.where,
                hint: err.hint,
              },
            )
          : err;
      }
      doc = docFromJson(cached.doc);
      reachable = false;
      warn(
        `${storeError(e, store, "starting").message}; starting with the last policy this node had (revision ${cached.revision})`,
      );
    }
    if (reachable && !samePolicy(cfg, doc))
      warn(
        `the policy in ${cfg.file} differs from the store's (revision ${doc.revision}), which is in force: in store mode shield.yaml's policy only seeds an empty store`,
      );
    state.cachePolicy(doc.revision, docToJson(doc));
    return new SharedStore(store, node, settings, pool, state, doc, reachable);
  }

  /** Start following the store: policy changes, log shipping, budget merges, retention. */
  async start(opts: {
    logPath: string;
    retentionDays?: number;
    version: string;
    proxy: string;
    apply: (doc: PolicyDoc) => void;
    warn: (m: string) => void;
  }): Promise<void> {
    this.shipper = new LogShipper(this.pool, this.node, opts.logPath, opts.warn);
    this.shipper.start();
    this.sync = new PolicySync(
      {
        store: this.store,
        settings: this.settings,
        pool: this.pool,
        node: this.node,
        version: opts.version,
        proxy: opts.proxy,
        revision: this.doc.revision,
        apply: (doc) => {
          opts.apply(doc);
          this.state.cachePolicy(doc.revision, docToJson(doc));
        },
        warn: opts.warn,
      },
      this.startedReachable,
    );
    await this.sync.start();
    if (opts.retentionDays !== undefined) {
      const days = opts.retentionDays;
      const run = () =>
        dropDaysBefore(this.pool, Date.now() - days * DAY_MS).catch((e: unknown) =>
          opts.warn(`log retention in the store failed: ${e instanceof Error ? e.message : String(e)}`),
        );
      setTimeout(run, 1000).unref();
      this.retention = setInterval(run, RETENTION_EVERY_MS);
      this.retention.unref();
    }
  }

  /** An edit this node made: follow it now rather than on its own notification. */
  edited(_revision: number): Promise<void> {
    // A read already running may have started before the edit: refresh reads once more then.
    return this.sync?.refresh() ?? Promise.resolve();
  }

  /** Ship every record the local log has committed (tests, and a clean stop). */
  async drainLog(): Promise<void> {
    await this.shipper?.drain();
  }

  health(): StoreHealth {
    const s: SyncHealth = this.sync?.health() ?? {
      reachable: this.startedReachable,
      unreachableSince: null,
      lastError: null,
      revision: this.doc.revision,
      lastSync: null,
    };
    const b = this.budgets.health();
    return {
      kind: "postgres",
      node: this.node,
      ...s,
      log: this.shipper?.health() ?? null,
      budgets: { lastMerge: b.lastMerge, lastError: b.lastError },
    };
  }

  /** After the log is closed: ship what is left if PostgreSQL takes it, then let go. */
  async close(): Promise<void> {
    if (this.retention) clearInterval(this.retention);
    await this.sync?.close();
    await this.budgets.close().catch(() => undefined);
    await this.shipper?.drain().catch(() => undefined);
    await this.shipper?.close();
    await this.state.close();
    await this.pool.end().catch(() => undefined);
  }
}
