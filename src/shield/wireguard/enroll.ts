/**
 * `shield enroll` and `shield revoke`: an agent joins or leaves shield.yaml (the file stays as
 * the operator laid it out) and the live interface, in that order. The running shield follows
 * the file by itself: it reloads, closes a revoked agent's tunnels and logs the change; the
 * interface is set here at once rather than waiting for the sync daemon to notice. The file's
 * edit itself is config-edit.ts's.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { ClawguardError, type ErrorDetails } from "../../errors.js";
import type { AgentConfig, ShieldConfig } from "../config.js";
import { parseShieldConfigKept, readKeptConfig } from "../config-cache.js";
import { interfaceAddresses, type AgentWireguard } from "../config-wireguard.js";
import type { LogReader } from "../log/store.js";
import { MEMBERSHIP_METHODS } from "../membership.js";
import { formatIP, parseCidr, parseIP, type IP } from "../../net/addresses.js";
import { HostPortError, parseHostPort, type HostPort } from "../../net/hostport.js";
import { editAgents, type AgentsEdit } from "./config-edit.js";
import { allocateAddresses, hostCidr } from "./allocate.js";
import { encodeJoinCode } from "./join-code.js";
import { caDirOf, SshCa } from "../ssh/ca.js";
import { KRL_PATH } from "../ssh/krl-server.js";
import { syncJumpHosts } from "../ssh/jump.js";
import { generateKeyPair, generatePresharedKey, publicKeyOf, wireguardKeyProblem } from "./keys.js";
import { changePeer, defaultRun, interfaceExists, readKeyFile, type PeerChange, type Run } from "./live.js";

export class EnrollError extends ClawguardError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("CG_ENROLL_REFUSED", message, details);
  }
}

export interface LiveOutcome {
  /** The interface has the new peers now. */
  applied: boolean;
  detail: string;
}

export interface EnrollOptions {
  configFile: string;
  id: string;
  /** HOST:PORT agents send to; wireguard.endpoint of the config by default. */
  endpoint?: string;
  fleet?: string;
  tier?: string;
  /** Made on the agent (lockdown keygen); its private half never leaves it. */
  publicKey?: string;
  presharedKey?: boolean;
  expiresInMs: number;
  now?: () => number;
  run?: Run;
  /** Set the running interface (default true; it is skipped with a note when there is none). */
  live?: boolean;
}

export interface EnrollResult {
  agent: string;
  addresses: string[];
  publicKey: string;
  /** An enrolled agent got a new key; its addresses stayed. */
  rotated: boolean;
  join: string;
  expires: number;
  live: LiveOutcome | null;
  /** The shield's sshd forwarding to agents (ssh_access.jump), or null when not kept. */
  jump: LiveOutcome | null;
}

/** Where enroll keeps preshared keys: root's, beside the shield's own key. */
export function presharedKeyPath(cfg: ShieldConfig, id: string): string {
  return path.join(path.dirname(cfg.wireguard!.privateKeyFile), "wireguard-psk", `${id}.psk`);
}

function wireguardOf(cfg: ShieldConfig) {
  const wg = cfg.wireguard;
  if (!wg)
    throw new EnrollError(
      `${cfg.file} has no wireguard section: set up the interface first (clawguard shield install --wireguard --endpoint HOST:PORT)`,
    );
  return wg;
}

/** Enrolment's change of shield.yaml, with enroll's errors. */
function editConfig<T>(
  file: string,
  decide: (cfg: ShieldConfig) => Promise<{ result: T; edit: AgentsEdit }>,
): Promise<{ cfg: ShieldConfig; result: T }> {
  return editAgents(file, decide, {
    unreadable: (code) => new EnrollError(`${file}: cannot read the config (${code})`),
    busy: () => new EnrollError(`${file} keeps changing while it is edited; try again`),
  });
}

/** Change the running interface, or say why it was left alone (the sync daemon applies the file). */
async function applyLive(
  cfg: ShieldConfig,
  change: PeerChange,
  r: Run,
  wanted: boolean,
): Promise<LiveOutcome | null> {
  if (!wanted) return null;
  const iface = cfg.wireguard!.interface;
  try {
    if (!(await interfaceExists(iface, r)))
      return {
        applied: false,
        detail: `no interface ${iface} here: the peers are set when it starts (systemctl start wg-quick@${iface})`,
      };
    await changePeer(iface, change, r);
    const what = [
      ...(change.remove !== undefined ? [`removed ${change.remove}`] : []),
      ...(change.set ? [`peer ${change.set.publicKey} on ${change.set.allowedIps.join(", ")}`] : []),
    ];
    return { applied: true, detail: `${iface}: ${what.join("; ")}` };
  } catch (e) {
    return {
      applied: false,
      detail: `${e instanceof Error ? e.message : String(e)}; shield.yaml is saved and the sync daemon applies it`,
    };
  }
}

function endpointOf(o: EnrollOptions, cfg: ShieldConfig): HostPort {
  const wg = wireguardOf(cfg);
  if (o.endpoint === undefined) {
    if (wg.endpoint) return wg.endpoint;
    throw new EnrollError(
      `--endpoint HOST:PORT is required (the shield's public address and UDP port ${wg.listenPort}), or set wireguard.endpoint in ${cfg.file}`,
    );
  }
  try {
    return parseHostPort(o.endpoint);
  } catch (e) {
    if (e instanceof HostPortError) throw new EnrollError(`--endpoint: ${e.reason} (e.g. 203.0.113.5:51820)`);
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

export async function enrollAgent(o: EnrollOptions): Promise<EnrollResult> {
  if (o.publicKey !== undefined) {
    const problem = wireguardKeyProblem(o.publicKey.trim());
    if (problem) throw new EnrollError(`--public-key: ${problem}`);
  }
  const pair = o.publicKey === undefined ? generateKeyPair() : null;
  const publicKey = o.publicKey?.trim() ?? pair!.publicKey;
  const psk = o.presharedKey ? generatePresharedKey() : undefined;
  let pskFile: string | undefined;

  // Sharing a store, agents are the store's: the agent joins it, carried by this node.
  const sharing = await sharedConfig(o.configFile);
  if (sharing) {
    const { enrollShared } = await import("./enroll-shared.js");
    const common = await commonOf(o, sharing);
    const { result, pskFile: made } = await enrollShared(o, sharing, publicKey, psk, (c) =>
      allocateAddresses(interfaceAddresses(wireguardOf(c)), takenAddresses(c.agents)).map(hostCidr),
    );
    return finish(o, sharing, { ...common, ...result }, publicKey, made, psk, pair);
  }
  const { cfg, result } = await editConfig(o.configFile, async (c) => {
    const wg = wireguardOf(c);
    const common = await commonOf(o, c);
    const existing = c.agents.find((a) => a.id === o.id);
    const owner = c.agents.find((a) => a.wireguard?.publicKey === publicKey);
    if (owner && owner.id !== o.id)
      throw new EnrollError(`agent "${owner.id}" already has this public key; every agent needs its own`);
    if (existing) {
      rotationProblem(o, existing);
      return {
        result: { ...common, addresses: existing.sources ?? [], replaced: existing.wireguard },
        edit: { kind: "setKey", id: o.id, publicKey },
      };
    }
    // Every address some agent holds is taken, whatever that agent is identified by.
    const addresses = allocateAddresses(interfaceAddresses(wg), takenAddresses(c.agents)).map(hostCidr);
    if (psk !== undefined) pskFile = await writePresharedKey(c, o.id, psk);
    const entry = {
      id: o.id,
      ...(o.fleet !== undefined ? { fleet: o.fleet } : {}),
      ...(o.tier !== undefined ? { tier: o.tier } : {}),
      sources: addresses,
      publicKey,
      ...(pskFile !== undefined ? { presharedKeyFile: pskFile } : {}),
    };
    return {
      result: { ...common, addresses, replaced: undefined as AgentWireguard | undefined },
      edit: { kind: "add", entry },
    };
  }).catch(async (e: unknown) => {
    if (pskFile !== undefined) await rm(pskFile, { force: true });
    throw e;
  });
  return finish(o, cfg, result, publicKey, pskFile, psk, pair);
}

/**
 * The config of `file` when its shield shares a store; null otherwise (or when it does not parse).
 * Read as kept when root kept this text; parsed and kept otherwise, so the edit that follows
 * for a shield without a store does not parse the file a second time.
 */
async function sharedConfig(file: string): Promise<ShieldConfig | null> {
  try {
    const text = await readFile(file, "utf8");
    const c = readKeptConfig(file, text)?.cfg ?? parseShieldConfigKept(text, file);
    return c.store ? c : null;
  } catch {
    return null; // the file's own path reports what is wrong with it
  }
}

/** What every join code of this shield says: where to send, the proxy, the shield's key. */
async function commonOf(o: EnrollOptions, c: ShieldConfig) {
  const wg = wireguardOf(c);
  const endpoint = endpointOf(o, c);
  const { proxy, shieldAddresses } = proxyOf(c);
  const shieldPublicKey = publicKeyOf(await readKeyFile(wg.privateKeyFile, "shield's WireGuard private key"));
  return { endpoint, proxy, shieldAddresses, shieldPublicKey };
}

/** Why an enrolled agent cannot take this new key, or nothing: a rotation keeps all but the key. */
export function rotationProblem(o: EnrollOptions, existing: AgentConfig): void {
  if (o.publicKey === undefined)
    throw new EnrollError(
      `agent "${o.id}" is already enrolled: to give it a new key, make one on the agent (clawguard lockdown keygen) and pass it with --public-key; to start over, revoke it first`,
    );
  if (!existing.wireguard)
    throw new EnrollError(
      `agent "${o.id}" is in ${o.configFile} without WireGuard (a token or source agent); pick another id or revoke it first`,
    );
  for (const [flag, want, have] of [
    ["--fleet", o.fleet, existing.fleet],
    ["--tier", o.tier, existing.tier],
  ] as const)
    if (want !== undefined && want !== have)
      throw new EnrollError(
        `${flag}: a key rotation keeps the agent's ${flag.slice(2)} (${have ?? "none"}); change it in ${o.configFile}`,
      );
  if (o.presharedKey)
    throw new EnrollError("--preshared-key: a key rotation keeps the agent's preshared key");
}

/** Root's alone, and there before the agent names it: the sync daemon may read it at once. */
export async function writePresharedKey(c: ShieldConfig, id: string, psk: string): Promise<string> {
  const file = presharedKeyPath(c, id);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, psk + "\n", { mode: 0o600, flag: "wx" }).catch((e: NodeJS.ErrnoException) => {
    throw new EnrollError(
      `${file}: ${e.code === "EEXIST" ? "exists already (left by an earlier enrolment?); remove it" : e.message}`,
    );
  });
  return file;
}

/** The interface, the join code and the jump hosts, once the agent is saved (file or store). */
async function finish(
  o: EnrollOptions,
  cfg: ShieldConfig,
  result: {
    endpoint: HostPort;
    proxy: HostPort;
    shieldAddresses: string[];
    shieldPublicKey: string;
    addresses: string[];
    replaced: AgentWireguard | undefined;
  },
  publicKey: string,
  pskFile: string | undefined,
  psk: string | undefined,
  pair: { privateKey: string } | null,
): Promise<EnrollResult> {
  const now = o.now ?? Date.now;
  const r = o.run ?? defaultRun;
  const keptPsk = result.replaced?.presharedKeyFile ?? pskFile;
  const live = await applyLive(
    cfg,
    {
      set: {
        publicKey,
        allowedIps: result.addresses,
        ...(keptPsk !== undefined ? { presharedKeyFile: keptPsk } : {}),
      },
      ...(result.replaced ? { remove: result.replaced.publicKey } : {}),
    },
    r,
    o.live !== false,
  );
  const expires = Math.floor((now() + o.expiresInMs) / 1000);
  const access = await sshAccessOf(cfg);
  const join = encodeJoinCode({
    agent: o.id,
    endpoint: result.endpoint,
    shieldPublicKey: result.shieldPublicKey,
    addresses: result.addresses,
    shieldAddresses: result.shieldAddresses,
    proxy: result.proxy,
    ...(psk !== undefined ? { presharedKey: psk } : {}),
    ...(pair ? { privateKey: pair.privateKey } : {}),
    expires,
    ...access,
  });
  return {
    agent: o.id,
    addresses: result.addresses,
    publicKey,
    rotated: result.replaced !== undefined,
    join,
    expires,
    live,
    jump: o.live !== false ? await syncJumpHosts(cfg, r) : null,
  };
}

/**
 * The fleet's SSH CA for the join code, when the shield has one: the agent's sshd trusts it for
 * the agent's principal, and fetches the KRL from where the shield serves it on the tunnel.
 */
async function sshAccessOf(cfg: ShieldConfig): Promise<{ sshCa?: string; krl?: string }> {
  const pub = await readFile(new SshCa(caDirOf(cfg.file)).publicKeyFile, "utf8").catch(() => null);
  if (pub === null) return {};
  const krl = cfg.sshAccess.krlListen;
  const host = krl && (krl.host.includes(":") ? `[${krl.host}]` : krl.host);
  return { sshCa: pub.trim(), ...(krl ? { krl: `http://${host}:${krl.port}${KRL_PATH}` } : {}) };
}

export interface RevokeOptions {
  configFile: string;
  id: string;
  run?: Run;
  live?: boolean;
  /** How long to wait for the running shield to log the revocation (default 3 s; 0: not at all). */
  waitForShieldMs?: number;
}

export interface RevokeResult {
  agent: string;
  addresses: string[];
  /** Null for an agent that was not on WireGuard. */
  publicKey: string | null;
  /**
   * The running shield logged the revocation (so it closed the agent's tunnels) before the peer
   * left the interface; false when it did not within the wait, null when not waited for.
   */
  shieldLogged: boolean | null;
  live: LiveOutcome | null;
  /** The shield's sshd forwarding to agents (ssh_access.jump), or null when not kept. */
  jump: LiveOutcome | null;
}

export async function revokeAgent(o: RevokeOptions): Promise<RevokeResult> {
  const since = Date.now();
  const { cfg, result } = await editConfig(o.configFile, async (c) => {
    const agent = c.agents.find((a) => a.id === o.id);
    if (!agent) throw new EnrollError(`no agent "${o.id}" in ${o.configFile}`);
    return { result: agent, edit: { kind: "remove", id: o.id } };
  });
  // The shield closes the agent's tunnels as it applies the file; the peer leaves after that, so
  // the agent still receives the close instead of a connection that goes silent.
  const wait = o.waitForShieldMs ?? 3000;
  const shieldLogged =
    wait > 0 && existsSync(cfg.log.path) ? await revocationLogged(cfg, o.id, since, wait) : null;
  const key = result.wireguard?.publicKey;
  if (shieldLogged && key !== undefined && o.live !== false)
    await closesDelivered(result.sources ?? [], wait, o.run ?? defaultRun);
  const live =
    key !== undefined ? await applyLive(cfg, { remove: key }, o.run ?? defaultRun, o.live !== false) : null;
  const psk = result.wireguard?.presharedKeyFile;
  if (psk !== undefined && cfg.wireguard && psk === presharedKeyPath(cfg, o.id))
    await rm(psk, { force: true });
  // The agent's address leaves the shield's forwarding as it leaves the interface.
  const jump = o.live !== false ? await syncJumpHosts(cfg, o.run ?? defaultRun) : null;
  return { agent: o.id, addresses: result.sources ?? [], publicKey: key ?? null, shieldLogged, live, jump };
}

/**
 * Wait, at most `ms`, until no connection of this host to the agent's addresses is open or
 * waiting for the agent to acknowledge its close: the shield's FIN has then reached the agent,
 * which sees its tunnels end instead of going silent once its peer is gone. The peer is removed
 * after the wait whatever it found: revocation never waits on the agent.
 */
async function closesDelivered(sources: string[], ms: number, run: Run): Promise<void> {
  const hosts = sources.map((s) => s.split("/")[0]!).map((a) => (a.includes(":") ? `[${a}]` : a));
  if (hosts.length === 0) return;
  const filter = `( ${hosts.map((h) => `dst ${h}`).join(" or ")} )`;
  const argv = [
    "ss",
    "-Htn",
    ...["established", "fin-wait-1", "closing", "last-ack"].flatMap((s) => ["state", s]),
    filter,
  ];
  const end = Date.now() + ms;
  for (;;) {
    const r = await run(argv).catch(() => null);
    if (r === null || r.code !== 0 || r.stdout.trim() === "" || Date.now() >= end) return;
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** Whether the running shield logs the agent's REVOKE within `ms` (reading its log, read-only). */
async function revocationLogged(cfg: ShieldConfig, id: string, since: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  // The log's SQLite is loaded here, by the revoke that waits for it: enroll never reads the log.
  const { openLogReader } = await import("../log/store.js");
  let reader: LogReader | null = null;
  try {
    for (;;) {
      try {
        reader ??= openLogReader(cfg.log.path);
        if (reader.query({ agent: id, since, limit: 100 }).some((r) => r.method === MEMBERSHIP_METHODS.left))
          return true;
      } catch {
        // Not a log yet, or busy: ask again until the time is up.
      }
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await reader?.close();
  }
}
