/**
 * How the gateway's proxy is reached: the WireGuard configs under /etc/wireguard (the networks
 * their peers carry, whether wg-quick brings them up at boot) and, where commands can run, the
 * interfaces up now and the interface the route to each proxy address leaves by. Types and pure
 * parsers; src/host/gather/wireguard-link.ts reads them from a system.
 */
export const WG_DIR = "/etc/wireguard";

export interface WireguardConfigFact {
  path: string;
  iface: string;
  /** Every [Peer]'s AllowedIPs. */
  allowedIps: string[];
  /** wg-quick@IFACE is enabled at boot. */
  enabled: boolean;
}

export interface WireguardLinkFact {
  configs: WireguardConfigFact[];
  /** WireGuard interfaces up now, or why that could not be asked. */
  live: { interfaces: string[] } | { skip: string };
  /** For each proxy address, the interface its route leaves by now (null: no route, or not asked). */
  routes: Record<string, string | null>;
}

/** The networks a wg-quick config's peers carry. Pure. */
export function peerAllowedIps(text: string): string[] {
  const out: string[] = [];
  let inPeer = false;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (/^\[.*\]$/.test(line)) inPeer = line.toLowerCase() === "[peer]";
    const m = /^AllowedIPs\s*=\s*(.*)$/i.exec(line);
    if (inPeer && m)
      out.push(
        ...m[1]!
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      );
  }
  return out;
}

/** The proxy hosts the gateway units name, from OPENCLAW_PROXY_URL, HTTPS_PROXY or HTTP_PROXY. */
export function proxyHostOf(env: Record<string, string>): string | null {
  for (const k of ["OPENCLAW_PROXY_URL", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]) {
    const v = env[k];
    if (!v) continue;
    try {
      return new URL(v).hostname.replace(/^\[|\]$/g, "");
    } catch {
      return null;
    }
  }
  return null;
}
