/**
 * `lockdown --join CODE`: the agent's side of enrolment. The code is checked (checksum, expiry)
 * before anything is touched; the shield's endpoint is resolved and pinned; the tunnel's config
 * joins the lockdown plan, so the rules let out UDP to that endpoint and, inside the tunnel,
 * only the proxy. Whether the code is this shield's can only be learnt from the shield itself:
 * after the tunnel comes up, a handshake must follow within a bounded time, or everything the
 * join changed is put back as it was.
 */
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { ClawguardError } from "../errors.js";
import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { renderAgentWgQuick } from "../render/agent-wireguard.js";
import { decodeJoinCode, type JoinCode } from "../shield/wireguard/join-code.js";
import { generateKeyPair, isWireguardKey, publicKeyOf } from "../shield/wireguard/keys.js";
import { defaultStateDir } from "../change/apply.js";
import { rollbackRun } from "../change/rollback.js";
import { defaultRunner, type Runner, type Step } from "../change/ruleset.js";
import { applyLockdown, recordedShield, type ApplyReport, type LiveOptions } from "./apply.js";
import type { LockdownPlan, TunnelInput } from "./plan.js";
import { LockdownInputError, pinShield, type Lookup, type PinnedShield } from "./spec.js";

/** Where `lockdown keygen` keeps the agent's key, and `--join` looks for it. */
export const AGENT_KEY_FILE = "/etc/clawguard/wireguard.key";
export const DEFAULT_INTERFACE = "cg0";

export class JoinHandshakeError extends ClawguardError {
  constructor(reason: string, hint: string) {
    super("CG_JOIN_NO_HANDSHAKE", reason, { hint });
  }
}

export interface JoinInput {
  code: string;
  nowSeconds: number;
  iface: string;
  /** The agent's own key, for a code enrolled with --public-key. */
  keyFile: string;
  lookup?: Lookup;
}

export interface PreparedJoin {
  code: JoinCode;
  /** The fleet's SSH CA the code carries, for this agent's principal, and where its KRL is. */
  sshCa?: { publicKey: string; agent: string; krlUrl?: string };
  /** The proxy on the shield's tunnel address, as lockdown's shield. */
  shield: PinnedShield;
  tunnel: TunnelInput;
}

/**
 * Everything the plan needs from a join code, or an error that changed nothing: a damaged or
 * expired code, no key for a code without one, an endpoint that does not resolve.
 */
export async function prepareJoin(host: Host, input: JoinInput): Promise<PreparedJoin> {
  if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(input.iface))
    throw new LockdownInputError(`--interface: "${input.iface}" is not an interface name`);
  const code = decodeJoinCode(input.code, input.nowSeconds);
  let privateKey = code.privateKey;
  if (privateKey === undefined) {
    const text = await host.readFile(input.keyFile).catch(() => null);
    privateKey = text?.trim();
    if (privateKey === undefined || !isWireguardKey(privateKey))
      throw new LockdownInputError(
        `the join code carries no private key (the agent was enrolled with --public-key), and ${input.keyFile} holds none: ` +
          "run clawguard lockdown keygen here, enroll its public key, and join with the new code",
      );
  }
  const endpoint = await pinShield(code.endpoint, input.lookup);
  const conf = renderAgentWgQuick({
    privateKey,
    addresses: code.addresses,
    shieldPublicKey: code.shieldPublicKey,
    ...(code.presharedKey !== undefined ? { presharedKey: code.presharedKey } : {}),
    endpoint: { address: endpoint.addresses[0]!, port: endpoint.port },
    shieldAddresses: code.shieldAddresses,
  });
  return {
    code,
    ...(code.sshCa !== undefined
      ? {
          sshCa: {
            publicKey: code.sshCa,
            agent: code.agent,
            ...(code.krl !== undefined ? { krlUrl: code.krl } : {}),
          },
        }
      : {}),
    shield: { host: code.proxy.host, port: code.proxy.port, addresses: [code.proxy.host], pinned: false },
    tunnel: {
      interface: input.iface,
      conf,
      // One address: the tunnel sends to one endpoint, so the rules let out no other.
      endpoint: { host: code.endpoint.host, port: code.endpoint.port, addresses: [endpoint.addresses[0]!] },
      shieldPublicKey: code.shieldPublicKey,
    },
  };
}

/** Seconds since the epoch of the latest handshake with `peer`, 0 for none; null without the interface. */
export async function latestHandshake(iface: string, peer: string, run: Runner): Promise<number | null> {
  const r = await run(["wg", "show", iface, "latest-handshakes"]).catch(() => null);
  if (r === null || r.code !== 0) return null;
  for (const line of r.stdout.split("\n")) {
    const [key, at] = line.trim().split(/\s+/);
    if (key === peer) return Number(at) || 0;
  }
  return 0;
}

/** Wait for the first handshake with the shield; false when none came within `timeoutMs`. */
export async function waitForHandshake(
  iface: string,
  peer: string,
  timeoutMs: number,
  run: Runner = defaultRunner,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (((await latestHandshake(iface, peer, run)) ?? 0) > 0) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface JoinReport {
  steps: Step[];
  /** Seconds since the epoch of the first handshake, or null when the live side was skipped. */
  handshake: number | null;
}

/**
 * Apply a join plan, then wait for the shield's handshake. Without one, undo the run the join
 * made (whatever lockdown was in force before is what the change engine puts back: its files,
 * its rules, its tunnel restarted) and throw JoinHandshakeError.
 */
export async function applyJoin(
  host: Host,
  writer: Writer,
  plan: LockdownPlan,
  opts: LiveOptions & { handshakeTimeoutMs: number; run?: Runner },
): Promise<{ apply: ApplyReport; handshake: number | null }> {
  const tunnel = plan.tunnel;
  if (!tunnel) throw new TypeError("applyJoin needs a plan with a tunnel");
  const run = opts.run ?? defaultRunner;
  const stateDir = defaultStateDir(host.root);
  // The journal lives at this path on the machine clawguard runs on (see change/apply.ts).
  const stateExisted = existsSync(stateDir);
  const prior = (await recordedShield(host)) !== null;
  const apply = await applyLockdown(host, writer, plan, opts);
  if (opts.live === false) return { apply, handshake: null };
  if (await waitForHandshake(tunnel.interface, tunnel.shieldPublicKey, opts.handshakeTimeoutMs, run)) {
    return { apply, handshake: await latestHandshake(tunnel.interface, tunnel.shieldPublicKey, run) };
  }
  const problems: string[] = [];
  if (apply.runId !== undefined) {
    const r = await rollbackRun(host, writer, stateDir, apply.runId);
    problems.push(...r.problems);
    // A join that never was leaves no journal of itself where there was none.
    if (!stateExisted && problems.length === 0)
      await rm(stateDir, { recursive: true }).catch((e: unknown) =>
        problems.push(`${stateDir}: ${String(e)}`),
      );
  }
  const where = `${tunnel.endpoint.host}:${tunnel.endpoint.port}`;
  throw new JoinHandshakeError(
    `no handshake with the shield at ${where} within ${Math.round(opts.handshakeTimeoutMs / 1000)} s: ` +
      `it does not know this agent's key (the join code is for another shield, or was revoked), or UDP to ${where} does not get through. ` +
      (problems.length
        ? `Could not put everything back: ${problems.join("; ")}`
        : prior
          ? "The lockdown in force before was put back."
          : "Nothing was left changed."),
    "check the code with the shield's operator (clawguard shield agents shows whether the agent is enrolled), or enroll again",
  );
}

/**
 * `lockdown keygen`: the agent's own key pair, for enrolment with --public-key; the private key
 * is written (0600, never overwritten) and never leaves this server.
 */
export async function keygen(
  host: Host,
  writer: Writer,
  file: string,
  force: boolean,
): Promise<{ publicKey: string; file: string; created: boolean }> {
  const existing = await host.readFile(file).catch(() => null);
  if (existing !== null && !force) {
    const key = existing.trim();
    if (!isWireguardKey(key))
      throw new LockdownInputError(`${file} exists and holds no WireGuard key; move it away or pass --force`);
    return { publicKey: publicKeyOf(key), file, created: false };
  }
  const pair = generateKeyPair();
  const uid = host.isRoot ? 0 : (process.getuid?.() ?? 0);
  const gid = host.isRoot ? 0 : (process.getgid?.() ?? 0);
  const dir = file.replace(/\/[^/]+$/, "") || "/";
  if (!(await host.stat(dir))) await writer.mkdir(dir, { mode: 0o700, uid, gid });
  await writer.writeFile(file, pair.privateKey + "\n", { mode: 0o600, uid, gid });
  return { publicKey: pair.publicKey, file, created: true };
}
