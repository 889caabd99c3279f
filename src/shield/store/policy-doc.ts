/**
 * The part of a shield's config that nodes sharing a store share: the global mode, rules and
 * budget, tiers, fleets, agents (with the node that carries each and their WireGuard keys), the
 * operators, and the mode switches made through the API. Everything else in shield.yaml (listen,
 * admin and its token file, log, limits, gateway, wireguard...) is the node's own. Pure: the store reads and writes rows, this turns them into a config and back.
 */
import { z } from "zod";
import type { AgentConfig, BudgetConfig, FleetConfig, ShieldConfig, TierConfig } from "../config.js";
import { ROLES, type OperatorConfig } from "../config-operators.js";
import type { Overrides } from "../admin/control.js";
import type { Mode } from "../types.js";

export interface StoredAgent extends AgentConfig {
  /** The node that carries it; null until one is chosen. */
  node: string | null;
}

export interface PolicyDoc {
  revision: number;
  mode: Mode;
  allow: string[];
  deny: string[];
  budget?: BudgetConfig;
  tiers: Record<string, TierConfig>;
  fleets: Record<string, FleetConfig>;
  agents: StoredAgent[];
  operators: OperatorConfig[];
  overrides: Overrides;
}

/** What shield.yaml seeds an empty store with: its policy, every agent carried by the seeding node. */
export function seedFrom(cfg: ShieldConfig, node: string): PolicyDoc {
  return {
    revision: 1,
    mode: cfg.mode,
    allow: cfg.allow,
    deny: cfg.deny,
    ...(cfg.budget ? { budget: cfg.budget } : {}),
    tiers: cfg.tiers,
    fleets: cfg.fleets,
    agents: cfg.agents.map((a) => ({ ...a, node })),
    operators: cfg.operators,
    overrides: { global: null, fleets: {}, agents: {} },
  };
}

/** The node's own settings with the store's policy in force (mode switches apart: see overrides). */
export function withPolicy(local: ShieldConfig, doc: PolicyDoc): ShieldConfig {
  return {
    ...local,
    mode: doc.mode,
    allow: doc.allow,
    deny: doc.deny,
    ...(doc.budget ? { budget: doc.budget } : { budget: undefined }),
    tiers: doc.tiers,
    fleets: doc.fleets,
    agents: doc.agents.map(({ node: _node, ...a }) => a),
    operators: doc.operators,
  };
}

/** Whether shield.yaml's policy says the same as the store's (mode switches aside). */
export function samePolicy(cfg: ShieldConfig, doc: PolicyDoc): boolean {
  const pick = (c: ShieldConfig) =>
    canonical([c.mode, c.allow, c.deny, c.budget ?? null, c.tiers, c.fleets, c.agents, c.operators]);
  return pick(cfg) === pick(withPolicy(cfg, doc));
}

/** JSON with every object's keys sorted and absent values left out: equal data, equal text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v ?? null);
}

const mode = z.enum(["enforce", "audit", "lockdown"]);
export const budgetSchema = z.strictObject({
  uploadBytes: z.number().int().positive().optional(),
  requests: z.number().int().positive().optional(),
  windowMs: z.number().int().positive(),
  shared: z.literal(true).optional(),
  text: z.string(),
});
/** A stored budget, checked: the store is another program's to write, so nothing is taken on trust. */
export function readBudget(v: unknown): BudgetConfig | undefined {
  return v === null || v === undefined ? undefined : budgetSchema.parse(v);
}
export const readMode = (v: unknown): Mode => mode.parse(v);

const operatorRow = z.object({
  name: z.string(),
  role: z.enum(ROLES),
  token_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  fleets: z.array(z.string()).min(1).nullable(),
});
/** A stored operator, checked as a budget is: a row that is not one refuses the whole policy. */
export function readOperator(v: unknown): OperatorConfig {
  const o = operatorRow.parse(v);
  return { name: o.name, role: o.role, tokenSha256: o.token_sha256, fleets: o.fleets };
}

/** The doc as JSON for the node's cache, and back (checked: a damaged cache is not a policy). */
export function docToJson(doc: PolicyDoc): string {
  return JSON.stringify(doc);
}

const ruleList = z.array(z.string());
const docSchema = z.object({
  revision: z.number().int(),
  mode,
  allow: ruleList,
  deny: ruleList,
  budget: budgetSchema.optional(),
  tiers: z.record(z.string(), z.object({ allow: ruleList, deny: ruleList, budget: budgetSchema.optional() })),
  fleets: z.record(
    z.string(),
    z.object({
      allow: ruleList,
      deny: ruleList,
      isolation: z.enum(["isolated", "fleet"]),
      mode: mode.optional(),
      budget: budgetSchema.optional(),
    }),
  ),
  agents: z.array(
    z.object({
      id: z.string(),
      allow: ruleList,
      deny: ruleList,
      fleet: z.string().optional(),
      tier: z.string().optional(),
      tokenSha256: z.string().optional(),
      sources: z.array(z.string()).optional(),
      mode: mode.optional(),
      budget: budgetSchema.optional(),
      wireguard: z.object({ publicKey: z.string(), presharedKeyFile: z.string().optional() }).optional(),
      node: z.string().nullable(),
    }),
  ),
  // A cache written before operators were shared has none: the store's come at the next read.
  operators: z
    .array(
      z.object({
        name: z.string(),
        role: z.enum(ROLES),
        tokenSha256: z.string(),
        fleets: z.array(z.string()).nullable(),
      }),
    )
    .default([]),
  overrides: z.object({
    global: mode.nullable(),
    fleets: z.record(z.string(), mode),
    agents: z.record(z.string(), mode),
  }),
});

export function docFromJson(text: string): PolicyDoc {
  return docSchema.parse(JSON.parse(text)) as PolicyDoc;
}
