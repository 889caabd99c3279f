/**
 * What every fleet command sets up and takes down: the inventory's hosts (selected by --limit),
 * the run store, the ssh connections, and the bundle of this clawguard for hosts without one,
 * built the first time a host needs it, in a directory only this user can read.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { UsageError } from "../errors.js";
import type { HostContext } from "./host.js";
import { loadInventory } from "./inventory/load.js";
import type { Inventory } from "./inventory/model.js";
import { selectHosts } from "./limit.js";
import { buildBundle, type Bundle } from "./remote/bundle.js";
import { SshConnector } from "./ssh/session.js";
import { defaultStatePath, RunStore } from "./store.js";
import { targetsFor, type Target } from "./target.js";

export interface ConnectSettings {
  sshConfig?: string;
  acceptNewHostKeys?: boolean;
  /** Seconds each step on a host may take. */
  timeout: number;
  copy?: boolean;
}

export interface Selection {
  inventory: Inventory;
  targets: Target[];
}

/** The hosts of `file` that `limit` selects, narrowed to `host` when one is named. */
export async function selectTargets(file: string, limit?: string, host?: string): Promise<Selection> {
  const inventory = await loadInventory(file);
  let names = selectHosts(inventory, limit);
  if (host !== undefined) {
    if (!names.includes(host))
      throw new UsageError(
        inventory.hosts.has(host)
          ? `${host} is not among the hosts --limit selects`
          : `no host ${host} in ${file}`,
        { where: "--host" },
      );
    names = [host];
  }
  return { inventory, targets: targetsFor(inventory, names) };
}

export function openStore(file?: string): RunStore {
  return RunStore.open(path.resolve(file ?? defaultStatePath()));
}

export class Connections {
  private bundleDir: string | undefined;
  private bundle: Promise<Bundle> | undefined;

  private constructor(readonly ctx: HostContext) {}

  static async open(s: ConnectSettings, version: string): Promise<Connections> {
    const connector = await SshConnector.create({
      configFile: s.sshConfig,
      acceptNewHostKeys: Boolean(s.acceptNewHostKeys),
      // Half the step at most: a host that takes the connection and never answers is then told
      // apart (ssh's own timeout) from one that answers and hangs later (ours).
      connectTimeoutS: Math.max(1, Math.min(30, Math.floor(s.timeout / 2))),
    });
    const ctx: HostContext = {
      connector,
      version,
      forceCopy: Boolean(s.copy),
      timeoutMs: s.timeout * 1000,
      bundle: () => self.getBundle(),
    };
    const self = new Connections(ctx);
    return self;
  }

  private getBundle(): Promise<Bundle> {
    this.bundle ??= mkdtemp(path.join(tmpdir(), "clawguard-fleet-")).then((dir) => {
      this.bundleDir = dir;
      return buildBundle(dir);
    });
    return this.bundle;
  }

  async close(): Promise<void> {
    await this.ctx.connector.close();
    await this.bundle?.catch(() => undefined);
    if (this.bundleDir) await rm(this.bundleDir, { recursive: true, force: true });
  }
}
