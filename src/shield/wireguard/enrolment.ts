/**
 * The enrol and revoke decisions, one implementation for `shield enroll`/`shield revoke` (root,
 * on the file) and the admin API (the shield, through its own config edit): which addresses an
 * agent gets, what is refused and why, the edit of the parsed shield.yaml, and the join code.
 * Pure: the callers read keys and files, write the result and set the interface. Refusals name
 * the option or field as the caller spells it (`--public-key` or `publicKey`).
 */
import { ClawguardError, type ErrorDetails } from "../../errors.js";
import type { AgentConfig, ShieldConfig } from "../config.js";
import { interfaceAddresses, type AgentWireguard } from "../config-wireguard.js";
import { formatIP, parseCidr, parseIP, type IP } from "../../net/addresses.js";
import { HostPortError, parseHostPort, type HostPort } from "../../net/hostport.js";
import { addAgentText, removeAgentText, setAgentKeyText } from "./agents-file.js";
import type { AgentsEdit } from "./config-edit.js";
import { allocateAddresses, hostCidr } from "./allocate.js";
import { encodeJoinCode } from "./join-code.js";
import { wireguardKeyProblem } from "./keys.js";
import { KRL_PATH } from "../ssh/krl-server.js";
import { parseDuration } from "../units.js";

export class EnrollError extends ClawguardError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("CG_ENROLL_REFUSED", message, details);
  }
}

/** The request's fields: how a refusal names them to the one who asked. */
export type EnrolField = "id" | "endpoint" | "fleet" | "tier" | "publicKey" | "presharedKey";

/** How the CLI spells them. */
export const CLI_SPELLING = (f: EnrolField): string =>
  f === "id" ? "ID" : `--${f.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`;

export class EnrolRefused extends EnrollError {
  constructor(
    readonly field: EnrolField,
    message: string,
  ) {
    super(message);
  }
}

/** A join code is valid from 1 minute to 30 days. */
const MIN_EXPIRY_MS = 60_000;
const MAX_EXPIRY_MS = 30 * 86_400_000;

/** How long a join code may be used, from "30m", "24h", "7d"; null when not a duration in range. */
export function joinExpiryMs(text: string): number | null {
  const ms = parseDuration(text);
  return ms === null || ms < MIN_EXPIRY_MS || ms > MAX_EXPIRY_MS ? null : ms;
}

export interface EnrolRequest {
  id: string;
  /** HOST:PORT agents send to; wireguard.endpoint of the config by default. */
  endpoint?: string;
  fleet?: string;
  tier?: string;
  /** The agent's public key: its own (made on the agent), or the half of a pair made for it. */
  publicKey: string;
  /** Whether the key was made on the agent: only such a key may replace an enrolled agent's. */
  ownKey: boolean;
  /** Where the agent's new preshared key will be, when it gets one. */
  presharedKeyFile?: string;
}

export interface EnrolPlan {
  addresses: string[];
  /** The enrolled agent's WireGuard entry whose key this one replaces (a key rotation). */
  replaced: AgentWireguard | undefined;
  endpoint: HostPort;
  proxy: HostPort;
  shieldAddresses: string[];
}

export function wireguardOf(cfg: ShieldConfig) {
  const wg = cfg.wireguard;
  if (!wg)
    throw new EnrollError(
      `${cfg.file} has no wireguard section: set up the interface first (clawguard shield install --wireguard --endpoint HOST:PORT)`,
    );
  return wg;
}

/** A public key given by the one who asks, checked before anything is read or written. */
export function checkPublicKey(key: string, spell: (f: EnrolField) => string): string {
  const problem = wireguardKeyProblem(key.trim());
  if (problem) throw new EnrolRefused("publicKey", `${spell("publicKey")}: ${problem}`);
  return key.trim();
}

function endpointOf(r: EnrolRequest, cfg: ShieldConfig, spell: (f: EnrolField) => string): HostPort {
  const wg = wireguardOf(cfg);
  if (r.endpoint === undefined) {
    if (wg.endpoint) return wg.endpoint;
    throw new EnrolRefused(
      "endpoint",
      `${spell("endpoint")} HOST:PORT is required (the shield's public address and UDP port ${wg.listenPort}), or set wireguard.endpoint in ${cfg.file}`,
    );
  }
  try {
    return parseHostPort(r.endpoint);
  } catch (e) {
    if (e instanceof HostPortError)
      throw new EnrolRefused("endpoint", `${spell("endpoint")}: ${e.reason} (e.g. 203.0.113.5:51820)`);
    throw e;
  }
}

/** The proxy must listen on one of the shield's tunnel addresses, or agents could not reach it. */
function proxyOf(cfg: ShieldConfig): { proxy: HostPort; shieldAddresses: string[] } {
  const shieldIps = interfaceAddresses(wireguardOf(cfg)).map((a) => a.ip);
  const listen = parseIP(cfg.listen.host);
  if (!listen || !shieldIps.some((ip) => ip.family === listen.family && ip.v === listen.v))
    throw new EnrollError(
      `listen (${cfg.listen.host}) is not one of the shield's WireGuard addresses (${shieldIps.map(formatIP).join(", ")}): agents on the tunnel could not reach the proxy; set listen: ${formatIP(shieldIps[0]!)}:${cfg.listen.port}`,
    );
  return {
    proxy: { host: cfg.listen.host, port: cfg.listen.port },
    shieldAddresses: shieldIps.map(hostCidr),
  };
}

function takenAddresses(agents: readonly AgentConfig[]): IP[] {
  const out: IP[] = [];
  for (const a of agents)
    for (const s of a.sources ?? []) {
      const c = parseCidr(s);
      if (typeof c !== "string")
        out.push(
          c.family === 4 ? { family: 4, v: c.network as number } : { family: 6, v: c.network as bigint },
        );
    }
  return out;
}

/**
 * Decide an enrolment against the config `cfg`, and the change of `agents:` that makes it: a new
 * agent gets the next free addresses; an enrolled one, given a key of its own, gets that key
 * and keeps the rest. Throws when the agent cannot be enrolled so.
 */
export function planEnrolment(
  cfg: ShieldConfig,
  r: EnrolRequest,
  spell: (f: EnrolField) => string,
): { plan: EnrolPlan; edit: AgentsEdit } {
  const wg = wireguardOf(cfg);
  const endpoint = endpointOf(r, cfg, spell);
  const { proxy, shieldAddresses } = proxyOf(cfg);
  const existing = cfg.agents.find((a) => a.id === r.id);
  const owner = cfg.agents.find((a) => a.wireguard?.publicKey === r.publicKey);
  if (owner && owner.id !== r.id)
    throw new EnrolRefused(
      "publicKey",
      `agent "${owner.id}" already has this public key; every agent needs its own`,
    );
  const common = { endpoint, proxy, shieldAddresses };
  if (existing) {
    if (!r.ownKey)
      throw new EnrolRefused(
        "id",
        `agent "${r.id}" is already enrolled: to give it a new key, make one on the agent (clawguard lockdown keygen) and pass it with ${spell("publicKey")}; to start over, revoke it first`,
      );
    if (!existing.wireguard)
      throw new EnrolRefused(
        "id",
        `agent "${r.id}" is in ${cfg.file} without WireGuard (a token or source agent); pick another id or revoke it first`,
      );
    for (const [field, want, have] of [
      ["fleet", r.fleet, existing.fleet],
      ["tier", r.tier, existing.tier],
    ] as const)
      if (want !== undefined && want !== have)
        throw new EnrolRefused(
          field,
          `${spell(field)}: a key rotation keeps the agent's ${field} (${have ?? "none"}); change it in ${cfg.file}`,
        );
    if (r.presharedKeyFile !== undefined)
      throw new EnrolRefused(
        "presharedKey",
        `${spell("presharedKey")}: a key rotation keeps the agent's preshared key`,
      );
    return {
      plan: { ...common, addresses: existing.sources ?? [], replaced: existing.wireguard },
      edit: { kind: "setKey", id: r.id, publicKey: r.publicKey },
    };
  }
  // Every address some agent holds is taken, whatever that agent is identified by.
  const addresses = allocateAddresses(interfaceAddresses(wg), takenAddresses(cfg.agents)).map(hostCidr);
  const entry = {
    id: r.id,
    ...(r.fleet !== undefined ? { fleet: r.fleet } : {}),
    ...(r.tier !== undefined ? { tier: r.tier } : {}),
    sources: addresses,
    publicKey: r.publicKey,
    ...(r.presharedKeyFile !== undefined ? { presharedKeyFile: r.presharedKeyFile } : {}),
  };
  return { plan: { ...common, addresses, replaced: undefined }, edit: { kind: "add", entry } };
}

/** Decide a revocation: the agent that leaves, as the config had it, and the change that removes it. */
export function planRevocation(cfg: ShieldConfig, id: string): { agent: AgentConfig; edit: AgentsEdit } {
  const agent = cfg.agents.find((a) => a.id === id);
  if (!agent) throw new EnrolRefused("id", `no agent "${id}" in ${cfg.file}`);
  return { agent, edit: { kind: "remove", id } };
}

/** The change made to shield.yaml's text, everything else kept (the admin API's edits are on text). */
export function agentsEditText(text: string, file: string, edit: AgentsEdit): string {
  if (edit.kind === "add") return addAgentText(text, file, edit.entry);
  if (edit.kind === "setKey") return setAgentKeyText(text, file, edit.id, edit.publicKey);
  return removeAgentText(text, file, edit.id);
}

export interface JoinSecrets {
  agent: string;
  shieldPublicKey: string;
  /** The agent's private key, when the shield made its pair. */
  privateKey?: string;
  presharedKey?: string;
  /** Seconds since the epoch. */
  expires: number;
  /** The fleet's SSH CA and where its KRL is served, when the shield has a CA. */
  sshCa?: string;
  krl?: string;
}

/** The join code for an enrolment: everything the agent needs, once. */
export function joinCodeOf(plan: EnrolPlan, s: JoinSecrets): string {
  return encodeJoinCode({
    agent: s.agent,
    endpoint: plan.endpoint,
    shieldPublicKey: s.shieldPublicKey,
    addresses: plan.addresses,
    shieldAddresses: plan.shieldAddresses,
    proxy: plan.proxy,
    ...(s.presharedKey !== undefined ? { presharedKey: s.presharedKey } : {}),
    ...(s.privateKey !== undefined ? { privateKey: s.privateKey } : {}),
    expires: s.expires,
    ...(s.sshCa !== undefined ? { sshCa: s.sshCa } : {}),
    ...(s.krl !== undefined ? { krl: s.krl } : {}),
  });
}

/** The SSH part of the join code from the CA's public key (null: the shield has no CA). */
export function sshAccessFor(
  cfg: ShieldConfig,
  caPublicKey: string | null,
): { sshCa?: string; krl?: string } {
  if (caPublicKey === null) return {};
  const krl = cfg.sshAccess.krlListen;
  const host = krl && (krl.host.includes(":") ? `[${krl.host}]` : krl.host);
  return {
    sshCa: caPublicKey.trim(),
    ...(krl ? { krl: `http://${host}:${krl.port}${KRL_PATH}` } : {}),
  };
}
