/**
 * The shape of shield.yaml as the operator writes it (snake_case). Every object is strict: an
 * unknown key is a typo, and a typo in a security policy must stop the shield, not be ignored.
 */
import { z } from "zod";
import { gatewaySchema } from "./config-gateway.js";
import { storeSchema } from "./config-store.js";
import { operatorSchema } from "./config-operators.js";

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
  /** An agent enrolled over WireGuard: its `sources` are its tunnel addresses. */
  wireguard: z
    .strictObject({
      public_key: z.string(),
      /** Read by the root side that configures the interface, never by the shield process. */
      preshared_key_file: z.string().min(1).optional(),
    })
    .optional(),
});

/** The shield's end of the agents' tunnels; the interface itself is configured by root. */
export const wireguardSchema = z.strictObject({
  interface: z.string().default("cg0"),
  listen_port: z.number().int().min(1).max(65535).default(51820),
  /** The shield's address in each range agents get theirs from: [10.77.0.1/16, fd77:77::1/64]. */
  address: z.array(z.string()).min(1),
  private_key_file: z.string().min(1),
  /** HOST:PORT agents send to: the shield's public address and listen_port, or what forwards to them. */
  endpoint: z.string().optional(),
  /** Where root writes the interface's peers for the shield to read; default under /run. */
  status_file: z.string().min(1).optional(),
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
  /** A public or wildcard `listen` without WireGuard carries tokens and targets in cleartext. */
  allow_cleartext: z.boolean().default(false),
  wireguard: wireguardSchema.optional(),
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
  /** This shield's name among those sharing `store`. */
  node: z.string().optional(),
  store: storeSchema.optional(),
  operators: z.array(operatorSchema).default([]),
  /**
   * Time-limited SSH access to agents: the longest a grant may last (default 8h), and where
   * agents fetch the KRL (default: the proxy's tunnel address, port 3129, with WireGuard; "off").
   */
  ssh_access: z
    .strictObject({
      max_grant: z.string().min(1).optional(),
      krl_listen: z.string().min(1).optional(),
      /** This server's sshd forwards to enrolled agents' SSH only (ssh -J), kept so by enroll and revoke. */
      jump: z.boolean().optional(),
    })
    .optional(),
});

export type RawShieldConfig = z.infer<typeof shieldSchema>;
