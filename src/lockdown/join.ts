/**
 * `lockdown --join CODE`: the agent's side of enrolment. The code is checked (checksum, expiry)
 * before anything is touched; the shield's endpoint is resolved and pinned; the tunnel's config
 * joins the lockdown plan, so the rules let out UDP to that endpoint and, inside the tunnel,
 * only the proxy. Whether the code is this shield's can only be learnt from the shield itself:
 * after the tunnel comes up, a handshake must follow within a bounded time, or everything the
 * join changed is put back as it was.
 */
import { readlink } from "node:fs/promises";
import path from "node:path";
import { ClawguardError } from "../errors.js";
import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { renderAgentWgQuick } from "../render/agent-wireguard.js";
import { decodeJoinCode, type JoinCode } from "../shield/wireguard/join-code.js";
import { generateKeyPair, isWireguardKey, publicKeyOf } from "../shield/wireguard/keys.js";
import { applyLockdown, readState, rollbackLockdown, STATE_FILE, type LiveOptions } from "./apply.js";
import {
  defaultRunner,
  loadRules,
  removeRules,
  systemctl,
  systemdRunning,
  tunnelDown,
  tunnelUp,
  type Runner,
  type Step,
} from "./live.js";
import {
  IPT_FILES,
  NFT_FILE,
  STATE_DIR,
  realNoFollow,
  tunnelUnit,
  type LockdownPlan,
  type TunnelInput,
} from "./plan.js";
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

interface Snapshot {
  path: string;
  kind: "absent" | "file" | "symlink";
  bytes?: Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  target?: string;
}

/** What is at each path now, to put back byte for byte if the join does not hold. */
async function snapshot(host: Host, paths: string[]): Promise<Snapshot[]> {
  const out: Snapshot[] = [];
  for (const p of paths) {
    const st = await host.lstat(p);
    if (!st) out.push({ path: p, kind: "absent" });
    else if (st.type === "symlink") {
      out.push({ path: p, kind: "symlink", target: await readlink(await realNoFollow(host, p)) });
    } else
      out.push({
        path: p,
        kind: "file",
        bytes: await host.readBytes(p),
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
      });
  }
  return out;
}

async function restore(host: Host, writer: Writer, snaps: Snapshot[]): Promise<string[]> {
  const problems: string[] = [];
  for (const s of snaps) {
    try {
      const now = await host.lstat(s.path);
      if (s.kind === "absent") {
        if (now) await writer.remove(s.path);
      } else if (s.kind === "symlink") {
        if (now) await writer.remove(s.path);
        await writer.symlink(s.target!, s.path);
      } else await writer.writeFile(s.path, s.bytes!, { mode: s.mode!, uid: s.uid!, gid: s.gid! });
    } catch (e) {
      problems.push(`${s.path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return problems;
}

export interface JoinReport {
  steps: Step[];
  /** Seconds since the epoch of the first handshake, or null when the live side was skipped. */
  handshake: number | null;
}

/**
 * Apply a join plan, then wait for the shield's handshake. Without one, put back what the join
 * changed (with no lockdown before, that is all of it) and throw JoinHandshakeError.
 */
export async function applyJoin(
  host: Host,
  writer: Writer,
  plan: LockdownPlan,
  opts: LiveOptions & { handshakeTimeoutMs: number },
): Promise<{ apply: Awaited<ReturnType<typeof applyLockdown>>; handshake: number | null }> {
  const tunnel = plan.tunnel;
  if (!tunnel) throw new TypeError("applyJoin needs a plan with a tunnel");
  const run = opts.run ?? defaultRunner;
  const prior = await readState(host);
  // Lockdown's rollback leaves the directory its state lived in; a join that never was, does not.
  const stateParent = path.posix.dirname(STATE_DIR);
  const parentExisted = (await host.lstat(stateParent)) !== null;
  const before = prior
    ? await snapshot(host, [...plan.files.map((f) => f.path), ...plan.links.map((l) => l.path), STATE_FILE])
    : [];
  const apply = await applyLockdown(host, writer, plan, opts);
  if (opts.live === false) return { apply, handshake: null };
  if (await waitForHandshake(tunnel.interface, tunnel.shieldPublicKey, opts.handshakeTimeoutMs, run)) {
    return { apply, handshake: await latestHandshake(tunnel.interface, tunnel.shieldPublicKey, run) };
  }
  const problems: string[] = [];
  if (!prior) {
    const r = await rollbackLockdown(host, writer, opts);
    problems.push(...r.problems);
    if (!parentExisted && (await host.readDir(stateParent).catch(() => null))?.length === 0)
      await writer.remove(stateParent).catch((e: unknown) => problems.push(`${stateParent}: ${String(e)}`));
  } else {
    problems.push(...(await undoOnto(host, writer, plan, prior.tunnel?.interface, before, opts)));
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

/** Put back a lockdown that was in force before this join: files, its rules, its tunnel. */
async function undoOnto(
  host: Host,
  writer: Writer,
  plan: LockdownPlan,
  priorTunnel: string | undefined,
  before: Snapshot[],
  opts: LiveOptions,
): Promise<string[]> {
  const run = opts.run ?? defaultRunner;
  const useSystemd = opts.systemd ?? systemdRunning(host.root);
  const tunnel = plan.tunnel!;
  const steps: Step[] = [];
  if (useSystemd) steps.push(await systemctl(run, ["stop", tunnelUnit(tunnel.interface)]));
  else steps.push(await tunnelDown(run, await realNoFollow(host, tunnel.config)));
  const problems = await restore(host, writer, before);
  const state = await readState(host);
  if (state)
    steps.push(
      ...(await loadRules(
        state.backend,
        {
          nft: await realNoFollow(host, NFT_FILE),
          v4: await realNoFollow(host, IPT_FILES[4]),
          v6: await realNoFollow(host, IPT_FILES[6]),
        },
        run,
      ).catch(async (e: unknown) => {
        problems.push(`the rules in force before did not load again (${String(e)}); removing them`);
        return removeRules(state.backend, run);
      })),
    );
  if (useSystemd) {
    steps.push(await systemctl(run, ["daemon-reload"]));
    if (priorTunnel !== undefined) steps.push(await systemctl(run, ["restart", tunnelUnit(priorTunnel)]));
  } else if (priorTunnel !== undefined && state?.tunnel)
    steps.push(...(await tunnelUp(run, await realNoFollow(host, state.tunnel.config))));
  for (const s of steps) if (!s.ok) problems.push(`${s.command}: ${s.detail ?? "failed"}`);
  return problems;
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
