/**
 * The admin API of shields that share a store: the nodes, which node carries which agent
 * (`shield move`, `shield drain`), and revoking an agent everywhere at once. A shield alone has
 * none of this; it answers 409 and says why.
 */
import type http from "node:http";
import { z } from "zod";
import type { NodeView } from "../store/pg-policy.js";
import type { StoreHealth } from "../store/index.js";
import type { OperatorConfig } from "../config-operators.js";
import { HttpError, parse, readJson, sendJson } from "./http.js";

/** What the API asks of the shared store (the daemon wires it). */
export interface StoreAdmin {
  health(): StoreHealth;
  nodes(): Promise<NodeView[]>;
  /** Where each agent is carried, by id. */
  owners(): Map<string, string | null>;
  removeAgent(id: string): Promise<{ tunnelsClosed: number }>;
  move(agent: string, to: string): Promise<{ from: string | null }>;
  drain(node: string): Promise<{ moved: Array<{ agent: string; to: string }> }>;
  /** Operators live in the store: added or removed there, every node follows. */
  addOperator(o: OperatorConfig): Promise<void>;
  removeOperator(name: string): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> | void;

const name = z.string().min(1).max(128);
const removeSchema = z.strictObject({ id: name });
const moveSchema = z.strictObject({ agent: name, to: name });
const drainSchema = z.strictObject({ node: name });

export function storeRoutes(store: StoreAdmin | undefined): Record<string, Record<string, Handler>> {
  const need = (): StoreAdmin => {
    if (store) return store;
    throw new HttpError(
      409,
      null,
      "this shield shares no store: nodes, moves and drains need store.postgres in shield.yaml; edit agents in shield.yaml",
    );
  };
  return {
    "/api/agents": {
      DELETE: async (req, res) => {
        const body = parse(removeSchema, await readJson(req));
        const r = await need().removeAgent(body.id);
        sendJson(res, 200, { ok: true, removed: body.id, ...r });
      },
    },
    "/api/agents/move": {
      POST: async (req, res) => {
        const body = parse(moveSchema, await readJson(req));
        const r = await need().move(body.agent, body.to);
        sendJson(res, 200, { ok: true, agent: body.agent, from: r.from, to: body.to });
      },
    },
    "/api/nodes": {
      GET: async (_req, res) => {
        const s = need();
        sendJson(res, 200, {
          schema: "clawguard.shield-nodes/v1",
          self: s.health().node,
          nodes: await s.nodes(),
        });
      },
    },
    "/api/nodes/drain": {
      POST: async (req, res) => {
        const body = parse(drainSchema, await readJson(req));
        const r = await need().drain(body.node);
        sendJson(res, 200, { ok: true, node: body.node, moved: r.moved });
      },
    },
  };
}
