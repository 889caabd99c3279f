/**
 * `clawguard shield wireguard-sync`: the root side of the shield's tunnels. It follows
 * shield.yaml (watching its directory, and again every half minute against drift), and, when the
 * shield shares a store, the agents the store says this node carries (read every second): the table
 * that confines agents, and the interface's peers, are whatever the file says. Every second it
 * publishes the peers' handshakes, endpoints and transfer, without keys, for the unprivileged
 * shield to show. With ssh_access.jump it keeps the shield's sshd forwarding to the file's
 * agents too, so an agent enrolled or revoked through the admin API or by hand enters or
 * leaves it as it enters or leaves the interface. A file that fails validation changes nothing,
 * as it does for the shield.
 */
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { chmod, chown, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../../errors.js";
import type { ShieldConfig } from "../config.js";
import { parseShieldConfigKept, readKeptConfig } from "../config-cache.js";
import {
  defaultRun,
  loadTable,
  showInterface,
  syncPeers,
  tableFor,
  type Run,
  type SyncResult,
} from "./live.js";
import { StoreAgents } from "./sync-store.js";
import { syncJumpHosts, type JumpOutcome } from "../ssh/jump.js";
import { JUMP_DROP_IN } from "../../render/sshd-jump.js";

export interface SyncOutcome {
  tableLoaded: boolean;
  peers: SyncResult;
  /** The sshd jump-host drop-in, or null when ssh_access.jump is off. */
  jump: JumpOutcome | null;
}

export interface SyncDaemonOptions {
  configFile: string;
  run?: Run;
  /** Lines for the journal. */
  say?: (line: string) => void;
  statusIntervalMs?: number;
  resyncIntervalMs?: number;
  debounceMs?: number;
  /**
   * How long a change that takes agents away waits before it is applied (default 1.5 s): the
   * shield, following the same file, closes their tunnels first, and its close must still find
   * the peer and the table that carry it to the agent. (`shield revoke` removes the peer itself
   * once the shield has logged the revocation; this is the edit made by hand.)
   */
  removalGraceMs?: number;
  /** How often the agents of a shared store are read (default 1 s). */
  storeIntervalMs?: number;
}

/** WireGuard agents of `before` that `after` no longer has with the same key. */
function agentsLeaving(before: ShieldConfig, after: ShieldConfig): string[] {
  return before.agents
    .filter(
      (a) =>
        a.wireguard !== undefined &&
        !after.agents.some((b) => b.id === a.id && b.wireguard?.publicKey === a.wireguard?.publicKey),
    )
    .map((a) => a.id);
}

async function readConfig(file: string, store: StoreAgents): Promise<{ cfg: ShieldConfig; hash: string }> {
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError(file, [{ keyPath: "", reason: `cannot read the config (${e.code ?? e.message})` }]);
  });
  const parsed = readKeptConfig(file, text)?.cfg ?? parseShieldConfigKept(text, file);
  if (!parsed.wireguard)
    throw new ConfigError(file, [
      { keyPath: "wireguard", reason: "there is no wireguard section: nothing to keep in step" },
    ]);
  // Sharing a store, the peers are the agents the store says this node carries.
  const cfg = await store.carried(parsed);
  const agents = cfg.store ? JSON.stringify(cfg.agents) : "";
  return { cfg, hash: createHash("sha256").update(text).update(agents).digest("hex") };
}

/** Apply the config once: the table when its text changed since `lastTable`, then the peers. */
export async function applyOnce(
  cfg: ShieldConfig,
  lastTable: string | null,
  r: Run = defaultRun,
  jumpFile: string = JUMP_DROP_IN,
): Promise<SyncOutcome & { table: string }> {
  const table = tableFor(cfg);
  let tableLoaded = false;
  if (table !== lastTable) {
    await loadTable(table, r);
    tableLoaded = true;
  }
  const peers = await syncPeers(cfg, r);
  // After the peers: an agent's address leaves sshd's forwarding as it leaves the interface.
  const jump = await syncJumpHosts(cfg, r, jumpFile).catch((e: unknown): JumpOutcome => ({
    applied: false,
    changed: false,
    detail: `${jumpFile}: ${e instanceof Error ? e.message : String(e)}`,
  }));
  return { table, tableLoaded, peers, jump };
}

/** Publish the interface's status (no keys) where the shield reads it, for the group of shield.yaml. */
export async function writeStatus(cfg: ShieldConfig, r: Run = defaultRun): Promise<void> {
  const wg = cfg.wireguard;
  if (!wg) return;
  const status = await showInterface(wg.interface, r);
  const dir = path.dirname(wg.statusFile);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = path.join(dir, `.${path.basename(wg.statusFile)}.tmp`);
  await writeFile(tmp, JSON.stringify(status ?? { schema: "none" }) + "\n", { mode: 0o640 });
  await chmod(tmp, 0o640);
  const owner = await stat(cfg.file).catch(() => null);
  // The shield runs as the owner of its config; only that group may read its agents' endpoints.
  if (owner && process.getuid?.() === 0) await chown(tmp, 0, owner.gid);
  await rename(tmp, wg.statusFile);
}

export function describe(o: SyncOutcome): string {
  const p = o.peers;
  const parts = [
    ...(o.tableLoaded ? ["table loaded"] : []),
    ...(p.added.length ? [`added ${p.added.join(", ")}`] : []),
    ...(p.removed.length ? [`removed ${p.removed.join(", ")}`] : []),
    ...(p.updated.length ? [`updated ${p.updated.join(", ")}`] : []),
    ...(o.jump && (o.jump.changed || !o.jump.applied) ? [`sshd: ${o.jump.detail}`] : []),
  ];
  return `${p.interface}: ${parts.length ? parts.join("; ") : "in step"} (${p.peers} peer(s))`;
}

/** The daemon. Resolves with a handle once the first sync has been applied (or failed and been said). */
export async function startSyncDaemon(o: SyncDaemonOptions): Promise<{ close(): void }> {
  const r = o.run ?? defaultRun;
  const say = o.say ?? ((l: string) => process.stdout.write(l + "\n"));
  let current: ShieldConfig | null = null;
  let lastHash: string | null = null;
  let lastTable: string | null = null;
  let chain: Promise<void> = Promise.resolve();
  let closed = false;
  let failed: string | null = null;
  const store = new StoreAgents();

  /**
   * `force` applies even an unchanged file: at start, and every half minute, since someone may
   * have changed the interface by hand. Only what changed is said, except at start.
   */
  const sync = (why: string, force: boolean, always = false, graceDone = false): Promise<void> => {
    chain = chain.then(async () => {
      if (closed) return;
      try {
        const { cfg, hash } = await readConfig(o.configFile, store);
        if (!force && hash === lastHash) return;
        if (!force && !graceDone && current && agentsLeaving(current, cfg).length > 0) {
          setTimeout(() => void sync(why, false, always, true), o.removalGraceMs ?? 1500);
          return;
        }
        const out = await applyOnce(cfg, lastTable, r);
        current = cfg;
        lastHash = hash;
        lastTable = out.table;
        const p = out.peers;
        failed = null;
        const jumpNews = out.jump !== null && (out.jump.changed || !out.jump.applied);
        if (always || out.tableLoaded || jumpNews || p.added.length + p.removed.length + p.updated.length > 0)
          say(`${why}: ${describe(out)}`);
      } catch (e) {
        // The interface keeps the peers of the last good config, as the shield keeps its policy.
        // Said once until it changes: a store that is away is asked every second.
        const text = e instanceof Error ? e.message : String(e);
        if (text !== failed) say(`${why}: not applied: ${text}`);
        failed = text;
      }
    });
    return chain;
  };

  const publish = async () => {
    if (current)
      await writeStatus(current, r).catch((e: unknown) =>
        say(`status: ${e instanceof Error ? e.message : String(e)}`),
      );
  };

  await sync("start", true, true);
  await publish();
  const dir = path.dirname(path.resolve(o.configFile));
  const base = path.basename(o.configFile);
  let timer: NodeJS.Timeout | null = null;
  const watcher: FSWatcher = watch(dir, { persistent: false }, (_e, name) => {
    if (name !== null && name !== base) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void sync("config changed", false), o.debounceMs ?? 100);
  });
  watcher.on("error", (e) =>
    say(`watching ${dir} failed (${e.message}); following by the half-minute check only`),
  );
  const resync = setInterval(() => void sync("periodic check", true), o.resyncIntervalMs ?? 30_000);
  // The store has no file to watch: it is read every second (an agent moved here has its peer
  // within about a second of the move; one moved away keeps it the removal grace longer).
  const follow = setInterval(() => {
    if (store.used) void sync("store changed", false);
  }, o.storeIntervalMs ?? 1000);
  let publishing = false;
  const status = setInterval(() => {
    if (publishing) return;
    publishing = true;
    void publish().finally(() => (publishing = false));
  }, o.statusIntervalMs ?? 1000);
  return {
    close() {
      closed = true;
      watcher.close();
      if (timer) clearTimeout(timer);
      clearInterval(resync);
      clearInterval(status);
      clearInterval(follow);
      void chain.then(() => store.close());
    },
  };
}

/** `--once`: the config must be valid and the interface there; throws otherwise. */
export async function syncOnceFromFile(configFile: string, r: Run = defaultRun): Promise<SyncOutcome> {
  const store = new StoreAgents();
  try {
    const { cfg } = await readConfig(configFile, store);
    const out = await applyOnce(cfg, null, r);
    await writeStatus(cfg, r);
    return out;
  } finally {
    await store.close();
  }
}
