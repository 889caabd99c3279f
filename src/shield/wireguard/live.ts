/**
 * The running interface, as root sees it: its peers read with `wg show dump`, set with `wg
 * syncconf` from shield.yaml, and the table that confines agents loaded with `nft`. Everything
 * here needs CAP_NET_ADMIN (and the key files): the sync daemon, enroll and revoke run it, the
 * shield process never does.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ShieldConfig } from "../config.js";
import { HostError } from "../../host/errors.js";
import { ClawguardError, FileUnreadableError } from "../../errors.js";
import { runCommand, type RunResult } from "../../host/host.js";
import {
  renderPeersConf,
  renderShieldWgNft,
  SHIELD_WG_TABLE,
  type PeerEntry,
} from "../../render/shield-wireguard.js";
import { interfaceAddresses } from "../config-wireguard.js";
import { formatIP } from "../../net/addresses.js";
import { isWireguardKey } from "./keys.js";
import { parseWgDump, type InterfaceStatus } from "./status.js";

export type Run = (argv: string[]) => Promise<RunResult>;

export const defaultRun: Run = (argv) => runCommand(argv, { timeoutMs: 15_000 });

/**
 * Run `argv` with `{}` replaced by a file holding `text`, in a directory only this user can
 * enter, removed after. The text can hold the private key; and /dev/stdin is no way to pass it,
 * as Node gives a child a socket there, which wg and nft cannot open by name.
 */
async function withFile(r: Run, argv: string[], text: string): Promise<RunResult> {
  const dir = await mkdtemp(path.join(tmpdir(), "clawguard-wg-"));
  try {
    const file = path.join(dir, "in");
    await writeFile(file, text, { mode: 0o600 });
    return await run(
      r,
      argv.map((a) => (a === "{}" ? file : a)),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export class WireguardLiveError extends ClawguardError {
  constructor(message: string) {
    super("CG_WIREGUARD_FAILED", message);
  }
}

export class KeyFileError extends ClawguardError {
  constructor(file: string, reason: string) {
    super("CG_WIREGUARD_KEY_INVALID", reason, { where: file });
  }
}

/**
 * A key file: one WireGuard key, readable by its owner alone. A key others can read is refused
 * rather than used: whoever reads the shield's key can pose as the shield to every agent.
 */
export async function readKeyFile(file: string, what: string): Promise<string> {
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0)
      throw new KeyFileError(
        file,
        `the ${what} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
      );
    text = await readFile(file, "utf8");
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new FileUnreadableError(file, `cannot read the ${what} (${code})`, {
      ...(code === "EACCES" ? { hint: "run this as root on the shield" } : {}),
    });
  }
  const key = text.trim();
  if (!isWireguardKey(key))
    throw new KeyFileError(file, `the ${what} is not a WireGuard key (wg genkey writes one)`);
  return key;
}

/** Every WireGuard agent of the config as a peer: its key, its addresses, its preshared key. */
export async function desiredPeers(cfg: ShieldConfig): Promise<PeerEntry[]> {
  const peers: PeerEntry[] = [];
  for (const a of cfg.agents) {
    if (!a.wireguard) continue;
    peers.push({
      publicKey: a.wireguard.publicKey,
      allowedIps: a.sources ?? [],
      ...(a.wireguard.presharedKeyFile !== undefined
        ? { presharedKey: await readKeyFile(a.wireguard.presharedKeyFile, `preshared key of agent ${a.id}`) }
        : {}),
    });
  }
  return peers;
}

async function run(r: Run, argv: string[]): Promise<RunResult> {
  try {
    return await r(argv);
  } catch (e) {
    throw new WireguardLiveError(
      `${argv.join(" ")}: ${e instanceof HostError ? e.problem.message : String(e)}`,
    );
  }
}

/** The interface's status now, or null when there is no such interface. */
export async function showInterface(iface: string, r: Run = defaultRun): Promise<InterfaceStatus | null> {
  const res = await run(r, ["wg", "show", iface, "dump"]);
  if (res.code !== 0) {
    if (/No such device|Unable to access interface|does not exist/i.test(res.stderr)) return null;
    throw new WireguardLiveError(`wg show ${iface} dump: ${res.stderr.trim() || `exit ${res.code}`}`);
  }
  return parseWgDump(res.stdout, iface, Date.now());
}

export interface SyncResult {
  interface: string;
  added: string[];
  removed: string[];
  /** Peers whose addresses or preshared key changed. */
  updated: string[];
  peers: number;
}

/**
 * Make the interface's peers exactly shield.yaml's WireGuard agents. `wg syncconf` changes only
 * what differs: peers that stay keep their sessions and handshakes.
 */
export async function syncPeers(cfg: ShieldConfig, r: Run = defaultRun): Promise<SyncResult> {
  const wg = cfg.wireguard;
  if (!wg) throw new WireguardLiveError(`${cfg.file} has no wireguard section`);
  const privateKey = await readKeyFile(wg.privateKeyFile, "shield's WireGuard private key");
  const peers = await desiredPeers(cfg);
  const before = await showInterface(wg.interface, r);
  if (before === null)
    throw new WireguardLiveError(
      `there is no interface ${wg.interface}: start it first (systemctl start wg-quick@${wg.interface})`,
    );
  const res = await withFile(
    r,
    ["wg", "syncconf", wg.interface, "{}"],
    renderPeersConf(privateKey, wg.listenPort, peers),
  );
  if (res.code !== 0)
    throw new WireguardLiveError(`wg syncconf ${wg.interface}: ${res.stderr.trim() || `exit ${res.code}`}`);
  const old = new Map(before.peers.map((p) => [p.publicKey, p.allowedIps.slice().sort().join(",")]));
  const now = new Set(peers.map((p) => p.publicKey));
  return {
    interface: wg.interface,
    added: peers.filter((p) => !old.has(p.publicKey)).map((p) => p.publicKey),
    removed: [...old.keys()].filter((k) => !now.has(k)),
    updated: peers
      .filter((p) => old.has(p.publicKey) && old.get(p.publicKey) !== p.allowedIps.slice().sort().join(","))
      .map((p) => p.publicKey),
    peers: peers.length,
  };
}

/** Whether the interface exists here (and this process may ask it). */
export async function interfaceExists(iface: string, r: Run = defaultRun): Promise<boolean> {
  const res = await run(r, ["wg", "show", iface, "public-key"]);
  if (res.code === 0) return true;
  if (/No such device|Unable to access interface|does not exist/i.test(res.stderr)) return false;
  throw new WireguardLiveError(`wg show ${iface}: ${res.stderr.trim() || `exit ${res.code}`}`);
}

export interface PeerChange {
  /** Added, or given new addresses. */
  set?: { publicKey: string; allowedIps: string[]; presharedKeyFile?: string };
  /** Taken off the interface. */
  remove?: string;
}

/**
 * One peer in, one out, or both at once (a new key for an agent): one `wg set`, which leaves
 * every other peer and its session alone and costs the same with a thousand peers as with one.
 */
export async function changePeer(iface: string, c: PeerChange, r: Run = defaultRun): Promise<void> {
  const argv = ["wg", "set", iface];
  if (c.remove !== undefined) argv.push("peer", c.remove, "remove");
  if (c.set) {
    argv.push("peer", c.set.publicKey, "allowed-ips", c.set.allowedIps.join(","));
    if (c.set.presharedKeyFile !== undefined) argv.push("preshared-key", c.set.presharedKeyFile);
  }
  const res = await run(r, argv);
  if (res.code !== 0)
    throw new WireguardLiveError(`${argv.join(" ")}: ${res.stderr.trim() || `exit ${res.code}`}`);
}

/** The table confining agents, as shield.yaml says it now. */
export function tableFor(cfg: ShieldConfig): string {
  const wg = cfg.wireguard;
  if (!wg) throw new WireguardLiveError(`${cfg.file} has no wireguard section`);
  return renderShieldWgNft({
    iface: wg.interface,
    shieldAddresses: interfaceAddresses(wg).map((a) => formatIP(a.ip)),
    proxy: cfg.listen,
    krl: cfg.sshAccess.krlListen,
  });
}

/** Load the table (one transaction: the old one is replaced, never missing in between). */
export async function loadTable(text: string, r: Run = defaultRun): Promise<void> {
  const res = await withFile(r, ["nft", "-f", "{}"], text);
  if (res.code !== 0)
    throw new WireguardLiveError(
      `nft -f (table inet ${SHIELD_WG_TABLE}): ${res.stderr.trim() || `exit ${res.code}`}`,
    );
}
