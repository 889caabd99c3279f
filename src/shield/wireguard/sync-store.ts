/**
 * The agents whose peers this node's interface carries when the shield shares a store: the
 * store's agents that `node:` carries, with the keys the store holds. An agent enrolled through
 * another node, or moved here by `shield move` or `drain`, becomes a peer here; one moved away
 * leaves. The rest of the config (interface, key, ranges) is the file's, as ever.
 */
import type pg from "pg";
import { ClawguardError } from "../../errors.js";
import type { ShieldConfig } from "../config.js";
import { openPool, pgSettings, storeError } from "../store/connect.js";
import { readPolicy } from "../store/pg-policy.js";
import { withPolicy } from "../store/policy-doc.js";

export class StoreAgents {
  private pool: pg.Pool | null = null;
  private url = "";
  /** A config of this node has named a store. */
  used = false;

  /** `cfg` with the agents this node carries in the store; `cfg` itself without a store. */
  async carried(cfg: ShieldConfig): Promise<ShieldConfig> {
    const store = cfg.store;
    if (!store) return cfg;
    this.used = true;
    if (!this.pool || this.url !== store.postgres) {
      await this.close();
      this.pool = openPool(await pgSettings(store), 1);
      this.url = store.postgres;
    }
    const doc = await readPolicy(this.pool).catch((e: unknown) => {
      throw storeError(e, store, "reading the agents this node carries");
    });
    if (doc === null)
      throw new ClawguardError("CG_STORE_FAILED", "the store holds no policy yet: start the shield first");
    return withPolicy(cfg, { ...doc, agents: doc.agents.filter((a) => a.node === cfg.node) });
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    await p?.end().catch(() => undefined);
  }
}
