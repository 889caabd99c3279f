/**
 * The admin API's routes as the handler dispatches them: the role each needs and its handler,
 * and what the change records of routes say about what they touched. Pure.
 */
import type http from "node:http";
import type { ShieldConfig } from "../config.js";
import type { ChangeKind } from "../log/index.js";
import type { ChangeTarget } from "../log/changes.js";
import type { Need, Operator } from "./access.js";

export type Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  op: Operator,
) => Promise<void> | void;

export interface Route {
  need: Need;
  fn: Handler;
}

/** Path -> method -> route. */
export type Routes = Record<string, Record<string, Route>>;

export const read = (fn: Handler): Route => ({ need: "read", fn });
export const change = (fn: Handler): Route => ({ need: "change", fn });
export const admin = (fn: Handler): Route => ({ need: "admin", fn });

/** A change an operator made, as a record of the audit log. */
export type Changed = (op: Operator, kind: ChangeKind, target: ChangeTarget, reason: string) => void;

/** What a mode switch or a rule edit touched, as a change record names it. */
export function targetOf(cfg: ShieldConfig, level: string, name: string | undefined): ChangeTarget {
  if (level === "fleet") return { fleet: name ?? null };
  if (level === "tier") return { tier: name ?? null };
  if (level === "agent") {
    const a = cfg.agents.find((x) => x.id === name);
    return { agent: name ?? null, fleet: a?.fleet ?? null, tier: a?.tier ?? null };
  }
  return {};
}

export function where(level: string, name: string | undefined): string {
  return level === "global" ? "the global level" : `${level} ${name}`;
}
