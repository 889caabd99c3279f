/**
 * `shield enroll` and `shield revoke`: an agent joins or leaves shield.yaml (the file stays as
 * the operator laid it out) and the live interface, in that order. The running shield follows
 * the file by itself: it reloads, closes a revoked agent's tunnels and logs the change; the
 * interface is set here at once rather than waiting for the sync daemon to notice. The decision
 * is enrolment.ts's (the admin API makes the same one); the file's edit is config-edit.ts's. A
 * shield sharing a store enrols into the store instead (enroll-shared.ts), with the same decision.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ShieldConfig } from "../config.js";
import { parseShieldConfigKept, readKeptConfig } from "../config-cache.js";
import type { LogReader } from "../log/store.js";
import { MEMBERSHIP_METHODS } from "../membership.js";
import { localUser, noteChange, textSha256 } from "../membership-journal.js";
import { editAgents, type AgentsEdit } from "./config-edit.js";
import {
  checkPublicKey,
  CLI_SPELLING,
  EnrollError,
  joinCodeOf,
  planEnrolment,
  planRevocation,
  sshAccessFor,
  wireguardOf,
} from "./enrolment.js";
import { caDirOf, SshCa } from "../ssh/ca.js";
import { syncJumpHosts } from "../ssh/jump.js";
import { generateKeyPair, generatePresharedKey, publicKeyOf } from "./keys.js";
import { changePeer, defaultRun, interfaceExists, readKeyFile, type PeerChange, type Run } from "./live.js";

export { EnrollError };

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
  /** The local user the shield's log names (default: SUDO_USER, else the uid's name). */
  user?: string;
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
  /** Why the journal could not name the user (the shield's log then says "by hand"), or null. */
  journal: string | null;
}

/** Where enroll keeps preshared keys: root's, beside the shield's own key. */
export function presharedKeyPath(cfg: ShieldConfig, id: string): string {
  return path.join(path.dirname(cfg.wireguard!.privateKeyFile), "wireguard-psk", `${id}.psk`);
}

/**
 * Enrolment's change of shield.yaml, with enroll's errors; the journal notes who made it before
 * the file is replaced (see membership-journal.ts).
 */
async function editConfig<T>(
  file: string,
  decide: (cfg: ShieldConfig) => Promise<{ result: T; edit: AgentsEdit }>,
  who: { agent: string; via: string; user: string },
): Promise<{ cfg: ShieldConfig; result: T; journal: string | null }> {
  let journal: string | null = null;
  const out = await editAgents(
    file,
    decide,
    {
      unreadable: (code) => new EnrollError(`${file}: cannot read the config (${code})`),
      busy: () => new EnrollError(`${file} keeps changing while it is edited; try again`),
    },
    async (text) => {
      journal = await noteChange(file, { sha256: textSha256(text), ...who, at: Date.now() });
    },
  );
  return { ...out, journal };
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

export async function enrollAgent(o: EnrollOptions): Promise<EnrollResult> {
  const now = o.now ?? Date.now;
  const r = o.run ?? defaultRun;
  const own = o.publicKey !== undefined ? checkPublicKey(o.publicKey, CLI_SPELLING) : null;
  const pair = own === null ? generateKeyPair() : null;
  const publicKey = own ?? pair!.publicKey;
  const psk = o.presharedKey ? generatePresharedKey() : undefined;
  let pskFile: string | undefined;

  const request = (c: ShieldConfig) => ({
    id: o.id,
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
    ...(o.fleet !== undefined ? { fleet: o.fleet } : {}),
    ...(o.tier !== undefined ? { tier: o.tier } : {}),
    publicKey,
    ownKey: own !== null,
    ...(psk !== undefined ? { presharedKeyFile: presharedKeyPath(c, o.id) } : {}),
  });
  // Sharing a store, agents are the store's: the agent joins it, carried by this node.
  const sharing = await sharedConfig(o.configFile);
  const { cfg, result, journal } = sharing
    ? await (async () => {
        const { enrollShared } = await import("./enroll-shared.js");
        const shieldPublicKey = publicKeyOf(
          await readKeyFile(wireguardOf(sharing).privateKeyFile, "shield's WireGuard private key"),
        );
        const out = await enrollShared(sharing, request(sharing), psk);
        pskFile = out.pskFile;
        return { cfg: sharing, result: { ...out.plan, shieldPublicKey }, journal: null };
      })()
    : await editConfig(
        o.configFile,
        async (c) => {
          const wg = wireguardOf(c);
          const shieldPublicKey = publicKeyOf(
            await readKeyFile(wg.privateKeyFile, "shield's WireGuard private key"),
          );
          const { plan, edit } = planEnrolment(c, request(c), CLI_SPELLING);
          if (psk !== undefined) pskFile = await writePresharedKey(presharedKeyPath(c, o.id), psk);
          return { result: { ...plan, shieldPublicKey }, edit };
        },
        { agent: o.id, via: "shield enroll", user: o.user ?? localUser() },
      ).catch(async (e: unknown) => {
        if (pskFile !== undefined) await rm(pskFile, { force: true });
        throw e;
      });
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
  const ca = await readFile(new SshCa(caDirOf(cfg.file)).publicKeyFile, "utf8").catch(() => null);
  const join = joinCodeOf(result, {
    agent: o.id,
    shieldPublicKey: result.shieldPublicKey,
    ...(psk !== undefined ? { presharedKey: psk } : {}),
    ...(pair ? { privateKey: pair.privateKey } : {}),
    expires,
    ...sshAccessFor(cfg, ca),
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
    journal,
  };
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

/** Root's alone, and there before the agent names it: the sync daemon may read it at once. */
export async function writePresharedKey(file: string, psk: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, psk + "\n", { mode: 0o600, flag: "wx" }).catch((e: NodeJS.ErrnoException) => {
    throw new EnrollError(
      `${file}: ${e.code === "EEXIST" ? "exists already (left by an earlier enrolment?); remove it" : e.message}`,
    );
  });
  return file;
}

export interface RevokeOptions {
  configFile: string;
  id: string;
  run?: Run;
  live?: boolean;
  /** How long to wait for the running shield to log the revocation (default 3 s; 0: not at all). */
  waitForShieldMs?: number;
  /** The local user the shield's log names (default: SUDO_USER, else the uid's name). */
  user?: string;
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
  /** Why the journal could not name the user (the shield's log then says "by hand"), or null. */
  journal: string | null;
}

export async function revokeAgent(o: RevokeOptions): Promise<RevokeResult> {
  const since = Date.now();
  // Sharing a store, the agent leaves the store, which every node follows; shield.yaml is not its.
  const sharing = await sharedConfig(o.configFile);
  const { cfg, result, journal } = sharing
    ? {
        cfg: sharing,
        result: await (await import("./enroll-shared.js")).revokeShared(sharing, o.id),
        journal: null,
      }
    : await editConfig(
        o.configFile,
        (c) => {
          const { agent, edit } = planRevocation(c, o.id);
          return Promise.resolve({ result: agent, edit });
        },
        { agent: o.id, via: "shield revoke", user: o.user ?? localUser() },
      );
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
  return {
    agent: o.id,
    addresses: result.sources ?? [],
    publicKey: key ?? null,
    shieldLogged,
    live,
    jump,
    journal,
  };
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
