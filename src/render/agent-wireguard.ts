/**
 * The agent's end of its tunnel to the shield, as wg-quick reads it. Pure: the join code was
 * checked and the shield's endpoint resolved before this.
 */

export interface AgentTunnelConfig {
  privateKey: string;
  /** The agent's tunnel addresses, /32 and /128. */
  addresses: string[];
  shieldPublicKey: string;
  presharedKey?: string;
  /** The shield's public address (an IP: the agent cannot resolve names once locked down) and port. */
  endpoint: { address: string; port: number };
  /** Only the shield's tunnel addresses go into the tunnel: nothing else is routed there. */
  shieldAddresses: string[];
}

/** Seconds between keepalives: the agent's NAT and firewall keep the shield's replies coming. */
export const KEEPALIVE_S = 25;

export function renderAgentWgQuick(c: AgentTunnelConfig): string {
  const endpoint = c.endpoint.address.includes(":")
    ? `[${c.endpoint.address}]:${c.endpoint.port}`
    : `${c.endpoint.address}:${c.endpoint.port}`;
  return [
    "# Written by clawguard lockdown --join; `clawguard lockdown rollback` removes it.",
    "# The agent's tunnel to its shield: nothing but the shield's tunnel address is routed into it.",
    "[Interface]",
    `PrivateKey = ${c.privateKey}`,
    `Address = ${c.addresses.join(", ")}`,
    "",
    "[Peer]",
    `PublicKey = ${c.shieldPublicKey}`,
    ...(c.presharedKey !== undefined ? [`PresharedKey = ${c.presharedKey}`] : []),
    `Endpoint = ${endpoint}`,
    `AllowedIPs = ${c.shieldAddresses.join(", ")}`,
    `PersistentKeepalive = ${KEEPALIVE_S}`,
    "",
  ].join("\n");
}
