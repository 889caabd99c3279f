/**
 * What the admin API and hot reload do when the shield shares a store. An edit (rule, mode,
 * revocation, move, drain) is written to the store first, and this node then applies the store's
 * policy as every other node does on the edit's notification: what a node enforces is always a
 * revision of the store, never a local variant of it.
 *
 * shield.yaml's policy keys only seed an empty store. A reload whose file says another policy
 * than the store's is refused, with the reason: applying it here would make this node differ
 * from the others until the next edit anywhere, and pushing it to the store would let one
 * node's stale file undo a revocation or a rule made elsewhere.
 */
import { ControlError, type ShieldControl } from "../admin/control.js";
import type { RuleEdit } from "../admin/rules-file.js";
import type { StoreAdmin } from "../admin/store-routes.js";
import type { ShieldConfig } from "../config.js";
import type { ReloadTarget } from "../reload.js";
import type { LogFilter } from "../log/query.js";
import type { Mode } from "../types.js";
import { ClawguardError } from "../../errors.js";
import { storeError } from "./connect.js";
import { drainNode, editRule, listNodes, moveAgent, removeAgent, setMode } from "./pg-policy.js";
import { addOperator, removeOperator } from "./pg-operators.js";
import { querySharedLog, type SharedRecord } from "./pg-log-read.js";
import { samePolicy, withPolicy, type PolicyDoc } from "./policy-doc.js";
import type { SharedStore } from "./index.js";

export interface SharedAdmin {
  applyDoc: (doc: PolicyDoc) => void;
  editRule(edit: RuleEdit, op: "add" | "remove"): Promise<{ tunnelsClosed: number }>;
  saveMode(change: { scope: "global" | "fleet" | "agent"; id?: string; mode: Mode | null }): Promise<void>;
  queryLog(filter: LogFilter): Promise<SharedRecord[]>;
  admin: StoreAdmin;
}

export function sharedAdmin(
  shared: SharedStore,
  ctl: ShieldControl,
  opts: { apply: (doc: PolicyDoc) => void },
): SharedAdmin {
  let owners = new Map(shared.doc.agents.map((a) => [a.id, a.node]));
  const applyDoc = (doc: PolicyDoc) => {
    opts.apply(doc);
    owners = new Map(doc.agents.map((a) => [a.id, a.node]));
  };
  /** Write to the store, then follow it here; a store that refuses or is away is a clear answer. */
  const write = async <T extends { revision: number }>(what: string, fn: () => Promise<T>): Promise<T> => {
    let out: T;
    try {
      out = await fn();
    } catch (e) {
      if (e instanceof ControlError) throw e;
      const err = storeError(e, shared.store, what);
      throw new ControlError(503, null, `${err.message}; nothing was changed on any node`);
    }
    await shared.edited(out.revision);
    return out;
  };
  const closedBy = (before: number | undefined) =>
    ctl.lastReload && ctl.lastReload.at !== before ? ctl.lastReload.tunnelsClosed : 0;

  return {
    applyDoc,
    async editRule(edit, op) {
      const before = ctl.lastReload?.at;
      await write(`${op === "add" ? "adding" : "removing"} a rule`, () => editRule(shared.pool, edit, op));
      return { tunnelsClosed: closedBy(before) };
    },
    async saveMode(change) {
      try {
        await write("saving a mode switch", () => setMode(shared.pool, change.scope, change.id, change.mode));
      } catch (e) {
        // The switch holds on this node already; the API says it reached no other.
        throw new Error(
          `${e instanceof Error ? e.message : String(e)}; it holds on node ${shared.node} only, until the store answers and is read again`,
        );
      }
    },
    queryLog: (filter) => querySharedLog(shared.pool, filter),
    admin: {
      health: () => shared.health(),
      nodes: () =>
        listNodes(shared.pool).catch((e: unknown) => {
          throw new ControlError(503, null, storeError(e, shared.store, "listing the nodes").message);
        }),
      owners: () => owners,
      async removeAgent(id) {
        const before = ctl.lastReload?.at;
        await write(`revoking agent ${id}`, () => removeAgent(shared.pool, id));
        return { tunnelsClosed: closedBy(before) };
      },
      move: (agent, to) => write(`moving agent ${agent}`, () => moveAgent(shared.pool, agent, to)),
      drain: (node) => write(`draining node ${node}`, () => drainNode(shared.pool, node)),
      addOperator: async (o) => {
        await write(`adding operator ${o.name}`, () => addOperator(shared.pool, o));
      },
      removeOperator: async (name) => {
        await write(`removing operator ${name}`, () => removeOperator(shared.pool, name));
      },
    },
  };
}

/**
 * Hot reload sharing a store: a file whose policy is the store's applies (its own settings are
 * read again, and say what waits for a restart); one that says another policy is refused.
 */
export function storeReloadTarget(
  ctl: ShieldControl,
  shared: SharedStore,
  loaded: (cfg: ShieldConfig) => void,
): ReloadTarget {
  let doc = shared.doc;
  return {
    // Agents come from the store here, whoever edited the file: nobody is named.
    apply(file: ShieldConfig, trigger: string) {
      doc = currentDoc(ctl, doc);
      if (!samePolicy(file, doc))
        throw new ClawguardError(
          "CG_CONFIG_INVALID",
          `its policy (mode, allow, deny, budget, tiers, fleets, agents or operators) differs from the store's (revision ${shared.health().revision}), which holds the policy of every node: nothing was applied. ` +
            "Change the policy with clawguard shield rules, mode, or the admin API, on any node; shield.yaml's policy only seeds an empty store",
        );
      loaded(file);
      const r = ctl.apply(withPolicy(file, doc), trigger);
      ctl.restoreOverrides(doc.overrides);
      return r;
    },
    reloadFailed: (trigger, error) => ctl.reloadFailed(trigger, error),
  };
}

/** The store's policy as this node applied it last (its agents and rules are in the control's config). */
function currentDoc(ctl: ShieldControl, doc: PolicyDoc): PolicyDoc {
  const c = ctl.cfg;
  const node = new Map(doc.agents.map((a) => [a.id, a.node]));
  return {
    ...doc,
    mode: c.mode,
    allow: c.allow,
    deny: c.deny,
    ...(c.budget ? { budget: c.budget } : {}),
    tiers: c.tiers,
    fleets: c.fleets,
    agents: c.agents.map((a) => ({ ...a, node: node.get(a.id) ?? null })),
    operators: c.operators,
    overrides: ctl.modes().overrides,
  };
}
