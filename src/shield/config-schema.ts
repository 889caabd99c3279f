/**
 * The shape of shield.yaml as the operator writes it (snake_case). Every object is strict: an
 * unknown key is a typo, and a typo in a security policy must stop the shield, not be ignored.
 */
import { z } from "zod";
import { gatewaySchema } from "./config-gateway.js";

const mode = z.enum(["enforce", "audit", "lockdown"]);
const rules = z.array(z.string()).default([]);
const positiveInt = z.number().int().positive();

/**
 * What each agent under this level may send per window; sizes and the window are read in
 * config.ts so that a bad one is reported with its line.
 */
const budget = z
  .strictObject({
    upload: z.union([z.number(), z.string()]).optional(),
    requests: positiveInt.optional(),
    window: z.string().default("1h"),
    shared: z.boolean().default(false),
  })
  .optional();

export const tierSchema = z.strictObject({ allow: rules, deny: rules, budget });

export const fleetSchema = z.strictObject({
  isolation: z.enum(["isolated", "fleet"]).default("isolated"),
  mode: mode.optional(),
  allow: rules,
  deny: rules,
  budget,
});

export const agentSchema = z.strictObject({
  id: z.string(),
  fleet: z.string().optional(),
  tier: z.string().optional(),
  token_sha256: z.string().optional(),
  sources: z.array(z.string()).optional(),
  mode: mode.optional(),
  allow: rules,
  deny: rules,
  budget,
});

export const limitsSchema = z
  .strictObject({
    max_header_bytes: positiveInt.default(16 * 1024),
    header_timeout_ms: positiveInt.default(10_000),
    idle_timeout_ms: positiveInt.default(120_000),
    connect_timeout_ms: positiveInt.default(10_000),
    max_tunnels_per_agent: positiveInt.default(512),
  })
  .default({
    max_header_bytes: 16 * 1024,
    header_timeout_ms: 10_000,
    idle_timeout_ms: 120_000,
    connect_timeout_ms: 10_000,
    max_tunnels_per_agent: 512,
  });

/** Where the admin API listens when the config says nothing: loopback, reached through SSH. */
export const DEFAULT_ADMIN_LISTEN = "127.0.0.1:9090";

export const shieldSchema = z.strictObject({
  listen: z.string(),
  log: z.strictObject({
    path: z.string().min(1),
    retention_days: positiveInt.optional(),
    max_bytes: positiveInt.optional(),
  }),
  mode: mode.default("enforce"),
  tiers: z.record(z.string(), tierSchema).default({}),
  fleets: z.record(z.string(), fleetSchema).default({}),
  agents: z.array(agentSchema).default([]),
  allow: rules,
  deny: rules,
  budget,
  limits: limitsSchema,
  // YAML reads a bare 403 as a number; both spellings mean the generic 403 page.
  refusal: z
    .union([z.literal("403"), z.literal("reset"), z.literal(403)])
    .default("403")
    .transform((v) => (v === 403 ? "403" : v)),
  strip_headers: z.array(z.string()).default([]),
  http_server: z.enum(["clawguard", "node"]).default("clawguard"),
  admin: z
    .strictObject({
      listen: z.string().default(DEFAULT_ADMIN_LISTEN),
      token_file: z.string().min(1).optional(),
      /** Where mode switches made through the API are kept; default shield-modes.json beside the log. */
      state_file: z.string().min(1).optional(),
    })
    .optional(),
  gateway: gatewaySchema.optional(),
});

export type RawShieldConfig = z.infer<typeof shieldSchema>;
