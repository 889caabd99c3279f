/**
 * The commands of shields that share a store: `shield nodes`, `shield move`, `shield drain`
 * (through any node's admin API), and `shield log` and `verify-log` reading every node's records
 * in PostgreSQL straight from the config's `store:`.
 */
import type { Command } from "commander";
import pg from "pg";
import { call, type ApiFlags } from "../shield/admin/client.js";
import type { ShieldConfig } from "../shield/config.js";
import type { LogFilter, StoredRecord } from "../shield/log/index.js";
import { pgSettings, storeError } from "../shield/store/connect.js";
import { querySharedLog, verifySharedLog, type SharedRecord } from "../shield/store/pg-log-read.js";
import { table } from "./shield-admin.js";

const out = (s: string): void => {
  process.stdout.write(s.endsWith("\n") ? s : s + "\n");
};

function apiOptions(cmd: Command): Command {
  return cmd
    .option("--admin <url>", "admin API address of any node (env CLAWGUARD_ADMIN_URL)")
    .option("--token-file <file>", "file holding the admin token (env CLAWGUARD_ADMIN_TOKEN_FILE)")
    .option("--config <file>", "shield.yaml to take admin.listen and admin.token_file from")
    .option("--json", "print the API's JSON answer");
}

export function registerShieldStoreCommands(shield: Command, setCode: (c: number) => void): void {
  apiOptions(
    shield
      .command("nodes")
      .description("the shields sharing the store: alive or not, and how many agents each carries"),
  ).action(async (flags: ApiFlags) => {
    const r = await call(flags, "GET", "/api/nodes");
    if (flags.json) return out(JSON.stringify(r, null, 2));
    const nodes = r.nodes as Array<{
      name: string;
      alive: boolean;
      lastSeen: number;
      agents: number;
      proxy: string;
      version: string;
    }>;
    out(
      table([
        ["NODE", "STATE", "AGENTS", "PROXY", "VERSION"],
        ...nodes.map((n) => [
          n.name + (n.name === r.self ? " (this)" : ""),
          n.alive ? "alive" : `silent ${Math.round((Date.now() - n.lastSeen) / 1000)}s`,
          String(n.agents),
          n.proxy,
          n.version,
        ]),
      ]),
    );
    setCode(0);
  });

  apiOptions(
    shield
      .command("move")
      .description("move an agent to another node (its WireGuard peer goes with it)")
      .argument("<agent>", "the agent's id")
      .requiredOption("--to <node>", "the node to carry it from now on"),
  ).action(async (agent: string, flags: ApiFlags & { to: string }) => {
    const r = await call(flags, "POST", "/api/agents/move", { agent, to: flags.to });
    if (flags.json) return out(JSON.stringify(r, null, 2));
    out(`${agent}: moved from ${String(r.from ?? "no node")} to ${flags.to}`);
    setCode(0);
  });

  apiOptions(
    shield
      .command("drain")
      .description("move every agent of a node to the other live nodes, fewest agents first")
      .argument("<node>", "the node to empty"),
  ).action(async (node: string, flags: ApiFlags) => {
    const r = await call(flags, "POST", "/api/nodes/drain", { node });
    if (flags.json) return out(JSON.stringify(r, null, 2));
    const moved = r.moved as Array<{ agent: string; to: string }>;
    out(moved.length ? moved.map((m) => `${m.agent} -> ${m.to}`).join("\n") : `${node} carries no agent`);
    setCode(0);
  });
}

async function withPool<T>(cfg: ShieldConfig, doing: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ ...(await pgSettings(cfg.store!)), max: 1 });
  pool.on("error", () => undefined);
  try {
    return await fn(pool);
  } catch (e) {
    throw storeError(e, cfg.store!, doing);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** Every node's records, newest `limit` matching, oldest first; `follow` keeps printing new ones. */
export async function sharedLog(
  cfg: ShieldConfig,
  filter: LogFilter,
  limit: number,
  print: (records: StoredRecord[]) => void,
  follow: AbortSignal | null,
): Promise<void> {
  await withPool(cfg, "reading the log", async (pool) => {
    const last = await querySharedLog(pool, { ...filter, order: "desc", limit });
    print(last.reverse());
    if (!follow) return;
    let after = last.reduce((m, r) => Math.max(m, r.seq), 0);
    if (after === 0) after = (await querySharedLog(pool, { order: "desc", limit: 1 }))[0]?.seq ?? 0;
    while (!follow.aborted) {
      const fresh: SharedRecord[] = await querySharedLog(pool, { ...filter, afterId: after, limit: 1000 });
      if (fresh.length > 0) {
        after = fresh[fresh.length - 1]!.seq;
        print(fresh);
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 500);
        follow.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  });
}

/** Verify every node's chain in the store; exit 1 naming the node and record where one breaks. */
export async function sharedVerify(
  cfg: ShieldConfig,
  json: boolean,
  setCode: (c: number) => void,
): Promise<void> {
  const v = await withPool(cfg, "verifying the log", (pool) => verifySharedLog(pool));
  const where = `${cfg.store!.postgres}`;
  if (json) {
    out(JSON.stringify({ schema: "clawguard.shield-verify-log/v1", store: where, ...v }, null, 2));
  } else {
    for (const n of v.nodes) {
      if (n.ok)
        out(
          `node ${n.node}: intact, ${n.count} record(s)` +
            (n.count > 0 ? `, ids ${n.fromId + 1}..${n.headId}` : "") +
            (n.fromId > 0 ? ` (older records dropped up to id ${n.fromId})` : "") +
            `\n  head ${n.headId}:${n.headHash}`,
        );
      else
        out(
          `node ${n.node}: BROKEN at record ${n.firstBadId}: ${n.reason}\n  ${n.count} record(s) before it verified; the store was changed outside the shields.`,
        );
    }
    if (v.nodes.length === 0) out(`${where}: no node has written a record yet`);
  }
  setCode(v.ok ? 0 : 1);
}
