import { networkInterfaces } from "node:os";
import type { AddressInfo } from "node:net";
import type { ShieldConfig } from "./config.js";
import { openLogStore } from "./log/index.js";
import type { Resolver } from "./net/resolve.js";
import { Policy } from "./policy/index.js";
import { ShieldProxy } from "./proxy/index.js";
import type { LogSink } from "./types.js";

export interface StartShieldOptions {
  /** Where records go; by default the SQLite store at `log.path` of the config. */
  sink?: LogSink;
  /** Name resolution for destinations; the system resolver by default. */
  resolver?: Resolver;
  /** Tunnels that may read 1 MiB at a time (see ShieldProxy); 64 by default. */
  maxBulkBuffers?: number;
  /** Of those, tunnels that may read 8 MiB at a time; 8 by default. */
  maxLargeBuffers?: number;
}

export interface RunningShield {
  readonly address: AddressInfo;
  readonly proxy: ShieldProxy;
  readonly policy: Policy;
  readonly sink: LogSink;
  /** Stop accepting, let requests in flight finish (tunnels get `graceMs`), then flush and close the log. */
  close(graceMs?: number): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Wire config, policy, log and proxy, and start listening. The policy is compiled before the
 * port opens, so a config the policy rejects never serves a single request; and the proxy
 * resets every connection until the policy is installed.
 */
export async function startShield(cfg: ShieldConfig, opts: StartShieldOptions = {}): Promise<RunningShield> {
  let policy = Policy.compile(cfg, { endpoints: selfEndpoints(cfg, cfg.listen.port) });
  const sink =
    opts.sink ??
    openLogStore(cfg.log.path, {
      retention:
        cfg.log.retentionDays !== undefined || cfg.log.maxBytes !== undefined
          ? {
              olderThanMs: cfg.log.retentionDays !== undefined ? cfg.log.retentionDays * DAY_MS : undefined,
              maxBytes: cfg.log.maxBytes,
            }
          : undefined,
    });
  const proxy = new ShieldProxy({
    sink,
    limits: cfg.limits,
    refusal: cfg.refusal,
    stripHeaders: cfg.stripHeaders,
    httpServer: cfg.httpServer,
    resolver: opts.resolver,
    maxBulkBuffers: opts.maxBulkBuffers,
    maxLargeBuffers: opts.maxLargeBuffers,
  });
  let address: AddressInfo;
  try {
    address = await proxy.listen(cfg.listen.host, cfg.listen.port);
  } catch (err) {
    await sink.close();
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new Error(
      `cannot listen on ${cfg.listen.host}:${cfg.listen.port} (${code}); change "listen" in the config or stop what holds the port`,
    );
  }
  // With port 0 the real port is known only now, and it is one of the shield's own endpoints.
  if (address.port !== cfg.listen.port) {
    policy = Policy.compile(cfg, { endpoints: selfEndpoints(cfg, address.port) });
  }
  proxy.setPolicy(policy);
  let closing: Promise<void> | null = null;
  return {
    address,
    proxy,
    policy,
    sink,
    close(graceMs?: number) {
      closing ??= (async () => {
        try {
          await proxy.close(graceMs);
        } finally {
          await sink.close();
        }
      })();
      return closing;
    },
  };
}

/**
 * Every host:port where the shield itself answers. A wildcard listen address answers on every
 * local address, so each of them is an endpoint an agent must not reach through the proxy.
 */
export function selfEndpoints(cfg: ShieldConfig, listenPort: number): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  const add = (host: string, port: number) => {
    for (const h of expandWildcard(host)) out.push({ host: h, port });
  };
  add(cfg.listen.host, listenPort);
  if (cfg.admin) add(cfg.admin.listen.host, cfg.admin.listen.port);
  return out;
}

function expandWildcard(host: string): string[] {
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return [host];
  const local = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined)
    .map((i) => i.address.replace(/%.*$/, ""));
  return [...new Set([host || "0.0.0.0", "127.0.0.1", "::1", ...local])];
}
