/**
 * The listeners of gateway mode, on the shield's addresses on its agents' network: transparent
 * HTTP (the proxy's own front, reading origin-form requests), transparent TLS and the agents'
 * resolver.
 * The nftables table of `clawguard shield gateway` sends the agents' traffic to them.
 */
import type { GatewayConfig } from "../config-gateway.js";
import { ShieldDns, type DnsAnswer } from "../dns/server.js";
import type { Resolver } from "../net/resolve.js";
import { TransparentTls, type TransparentHost } from "./tls.js";

export interface GatewayListeners {
  close(): Promise<void>;
}

export async function startGateway(
  gw: GatewayConfig,
  host: TransparentHost,
  opts: {
    resolver: Resolver;
    headerTimeoutMs: number;
    onDnsQuery?: (agent: string | null, answer: DnsAnswer) => void;
  },
): Promise<GatewayListeners> {
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    await Promise.all(closers.map((c) => c()));
  };
  try {
    for (const address of gw.listen) {
      if (gw.http) {
        const front = host.transparentHttp();
        await new Promise<void>((resolve, reject) => {
          front.server.once("error", reject);
          front.server.listen({ host: address, port: gw.http!.listener }, () => {
            front.server.off("error", reject);
            resolve();
          });
        });
        closers.push(() => {
          front.closeIdle();
          return new Promise<void>((r) => front.server.close(() => r()));
        });
      }
      if (gw.https) {
        const tls = new TransparentTls(host, { port: gw.https.port, headerTimeoutMs: opts.headerTimeoutMs });
        await tls.listen(address, gw.https.listener);
        closers.push(() => tls.close());
      }
      if (gw.dns !== null) {
        const dns = new ShieldDns({
          policy: () => host.currentPolicy(),
          resolver: opts.resolver,
          ports: { https: gw.https?.port ?? null, http: gw.http?.port ?? null },
          ...(opts.onDnsQuery ? { onQuery: opts.onDnsQuery } : {}),
        });
        await dns.listen(address, gw.dns);
        closers.push(() => dns.close());
      }
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { close };
}
