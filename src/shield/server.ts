import { networkInterfaces } from "node:os";
import type { AddressInfo } from "node:net";
import { ClawguardError } from "../errors.js";
import type { ShieldConfig } from "./config.js";
import type { Resolver } from "./net/resolve.js";
import { Policy } from "./policy/index.js";
import { ShieldProxy } from "./proxy/index.js";
import type { LogSink } from "./types.js";

export interface StartShieldOptions {
  /** Where records go: the daemon's SQLite store, or a test's memory. */
  sink: LogSink;
  /** Name resolution for destinations; the system resolver by default. */
  resolver?: Resolver;
  /** Tunnels that may read 1 MiB at a time (see ShieldProxy); 64 by default. */
  maxBulkBuffers?: number;
  /** Of those, tunnels that may read 8 MiB at a time; 8 by default. */
  maxLargeBuffers?: number;
  /** Seconds each admission took (the latency histogram). */
  onLatency?: (seconds: number) => void;
}

export interface RunningShield {
  readonly address: AddressInfo;
  readonly proxy: ShieldProxy;
  readonly policy: Policy;
  readonly sink: LogSink;
  /** Stop accepting, let requests in flight finish (tunnels get `graceMs`), then flush and close the sink. */
  close(graceMs?: number): Promise<void>;
}

/**
 * The data path of the daemon (daemon.ts), on its own for tests and benchmarks: the policy
 * compiled for the ports really bound, and the proxy listening. The policy is compiled before
 * the port opens, so a config the policy rejects never serves a single request; and the proxy
 * resets every connection until the policy is installed.
 */
export async function startShield(cfg: ShieldConfig, opts: StartShieldOptions): Promise<RunningShield> {
  let policy = Policy.compile(cfg, { endpoints: selfEndpoints(cfg, cfg.listen.port) });
  const { sink } = opts;
  const proxy = new ShieldProxy({
    sink,
    limits: cfg.limits,
    refusal: cfg.refusal,
    stripHeaders: cfg.stripHeaders,
    httpServer: cfg.httpServer,
    resolver: opts.resolver,
    maxBulkBuffers: opts.maxBulkBuffers,
    maxLargeBuffers: opts.maxLargeBuffers,
    onLatency: opts.onLatency,
  });
  let address: AddressInfo;
  try {
    address = await proxy.listen(cfg.listen.host, cfg.listen.port);
  } catch (err) {
    await sink.close();
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new ClawguardError(
      "CG_LISTEN_FAILED",
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
  // Gateway mode's listeners: an agent's CONNECT to one of them would loop back into the shield.
  const gw = cfg.gateway;
  if (gw)
    for (const host of gw.listen)
      for (const port of [gw.http?.listener, gw.https?.listener, gw.dns ?? undefined])
        if (port !== undefined) add(host, port);
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
