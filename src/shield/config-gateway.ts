/**
 * `gateway:` in shield.yaml: the shield as the only way out of its agents' private network.
 *
 *   gateway:
 *     networks: [10.80.0.0/24]          # the agents' network(s), as the shield sees them
 *     listen: [10.80.0.1]               # the shield's address(es) there: its listeners bind them
 *     transparent: { http: 80, https: 443 }
 *     dns: true                         # the shield answers the agents' DNS
 *     ports: { http: 3180, https: 3443, dns: 3053 }   # where the intercepted traffic lands
 */
import { z } from "zod";
import { formatCidr, formatIP, parseCidr, parseIP } from "../net/addresses.js";
import type { Segment } from "../yaml/read.js";

const port = z.number().int().min(1).max(65535);

export const gatewaySchema = z.strictObject({
  networks: z.array(z.string()).min(1),
  listen: z.array(z.string()).min(1),
  /** A destination port to intercept, or null to leave that protocol alone. */
  transparent: z
    .strictObject({ http: port.nullable().default(80), https: port.nullable().default(443) })
    .default({ http: 80, https: 443 }),
  dns: z.boolean().default(true),
  ports: z
    .strictObject({ http: port.default(3180), https: port.default(3443), dns: port.default(3053) })
    .default({ http: 3180, https: 3443, dns: 3053 }),
});

export type RawGateway = z.infer<typeof gatewaySchema>;

export interface GatewayConfig {
  /** Canonical CIDRs. */
  networks: string[];
  /** Canonical addresses the transparent listeners and the resolver bind. */
  listen: string[];
  /** The intercepted port and the local port its listener takes it on; null when not intercepted. */
  http: { port: number; listener: number } | null;
  https: { port: number; listener: number } | null;
  /** The resolver's local port, or null when the agents' DNS is not answered. */
  dns: number | null;
}

export function gatewayConfig(
  raw: RawGateway,
  proxyPort: number,
  fail: (segs: Segment[], reason: string) => void,
): GatewayConfig {
  const networks: string[] = [];
  raw.networks.forEach((n, i) => {
    const c = parseCidr(n.trim());
    if (typeof c === "string") fail(["gateway", "networks", i], `bad CIDR: ${c}`);
    else if (c.prefix === 0)
      fail(["gateway", "networks", i], `${n} is every address: name the agents' private network`);
    else networks.push(formatCidr(c));
  });
  const listen: string[] = [];
  raw.listen.forEach((a, i) => {
    const ip = parseIP(a.trim());
    if (ip === null) fail(["gateway", "listen", i], `"${a}" is not an IP address`);
    else listen.push(formatIP(ip));
  });
  const t = raw.transparent;
  const used = new Map<number, string>([[proxyPort, "the proxy (listen)"]]);
  const claim = (p: number, what: string, key: Segment[]) => {
    const other = used.get(p);
    if (other !== undefined) fail(key, `port ${p} is taken by ${other}`);
    used.set(p, what);
  };
  if (t.http !== null) claim(raw.ports.http, "the transparent HTTP listener", ["gateway", "ports", "http"]);
  if (t.https !== null) claim(raw.ports.https, "the transparent TLS listener", ["gateway", "ports", "https"]);
  if (raw.dns) claim(raw.ports.dns, "the resolver", ["gateway", "ports", "dns"]);
  if (t.http !== null && t.http === t.https)
    fail(["gateway", "transparent", "https"], "HTTP and HTTPS cannot intercept the same port");
  return {
    networks,
    listen,
    http: t.http === null ? null : { port: t.http, listener: raw.ports.http },
    https: t.https === null ? null : { port: t.https, listener: raw.ports.https },
    dns: raw.dns ? raw.ports.dns : null,
  };
}
