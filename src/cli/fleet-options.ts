/** What the fleet commands that reach hosts share: their options, and setting up and taking down. */
import { createRequire } from "node:module";
import { InvalidArgumentError, type Command } from "commander";
import { clean } from "../fleet/render/text.js";
import { Connections, openStore, type ConnectSettings } from "../fleet/setup.js";
import type { RunStore } from "../fleet/store.js";

export const VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export interface ConnectFlags extends ConnectSettings {
  inventory: string;
  limit?: string;
  forks: number;
  state?: string;
  json?: boolean;
}

export function positive(name: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n < 1 || n > max)
      throw new InvalidArgumentError(`${name} must be 1 to ${max}`);
    return n;
  };
}

/** The options every command that reaches hosts takes. */
export function addConnectOptions(cmd: Command, defaultTimeoutS: number): Command {
  return cmd
    .requiredOption(
      "-i, --inventory <file>",
      "Ansible inventory (INI or YAML), or a list of user@host[:port]",
    )
    .option(
      "--limit <pattern>",
      "only these hosts and groups, as Ansible's --limit (web*, prod:!db, web:&canary)",
    )
    .option("--forks <n>", "hosts worked on at once", positive("--forks", 1000), 10)
    .option(
      "--timeout <seconds>",
      "how long each step on a host may take before it is cut",
      positive("--timeout", 86400),
      defaultTimeoutS,
    )
    .option(
      "--accept-new-host-keys",
      "take the key of a host never seen before (a changed key is always refused)",
    )
    .option("--ssh-config <file>", "ssh config file instead of ~/.ssh/config (ssh -F)")
    .option("--copy", "copy this clawguard to every host, even where one is installed")
    .option("--state <file>", "where fleet runs are kept (default $XDG_STATE_HOME/clawguard/fleet.db)");
}

/** Store, connections and the run: opened, handed to `fn`, closed whatever happens. */
export async function withFleet<T>(
  flags: ConnectSettings & { state?: string },
  fn: (store: RunStore, conn: Connections) => Promise<T>,
): Promise<T> {
  const store = openStore(flags.state);
  try {
    const conn = await Connections.open(flags, VERSION);
    try {
      return await fn(store, conn);
    } finally {
      await conn.close();
    }
  } finally {
    store.close();
  }
}

export function printWarnings(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`clawguard: warning: ${clean(w)}\n`);
}
