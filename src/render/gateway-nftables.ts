/**
 * The shield host's rules in gateway mode, as text: one nftables table, `inet clawguard_gateway`.
 * The agents' servers sit on a private network whose only way out is the shield. The shield
 * never routes an agent's packet as it is: TCP to the intercepted HTTP and HTTPS ports is
 * redirected to the shield's transparent listeners, DNS to its resolver, its explicit proxy
 * port stays open, and everything else from the agents' networks is dropped and counted. Root
 * on an agent changes nothing of this: the rules are not on the agent's machine. Pure.
 */

export const GATEWAY_TABLE = "clawguard_gateway";
export const GATEWAY_FAMILY = "inet";

export interface GatewaySpec {
  /** The agents' private networks, as the shield sees them (canonical CIDRs). */
  networks: string[];
  /** Intercepted destination port -> the local port of the listener that takes it. */
  http: { port: number; listener: number } | null;
  https: { port: number; listener: number } | null;
  /** The resolver's local port (UDP and TCP), when the shield answers the agents' DNS. */
  dns: number | null;
  /** The explicit proxy's port, for agents that set a proxy URL. */
  proxyPort: number;
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, "")}"`;
}

/**
 * Loading the file replaces the table in one transaction (declared first, so that the delete
 * is valid when it does not exist yet): applying twice gives the same ruleset, and no packet
 * ever sees a half-loaded table.
 */
export function renderGatewayRuleset(spec: GatewaySpec): string {
  const v4 = spec.networks.filter((n) => !n.includes(":"));
  const v6 = spec.networks.filter((n) => n.includes(":"));
  const families: Array<{ ip: "ip" | "ip6"; set: string; nets: string[] }> = [
    { ip: "ip" as const, set: "agents4", nets: v4 },
    { ip: "ip6" as const, set: "agents6", nets: v6 },
  ].filter((f) => f.nets.length > 0);
  const sets = families.flatMap((f) => [
    `\tset ${f.set} {`,
    `\t\ttype ${f.ip === "ip" ? "ipv4_addr" : "ipv6_addr"}; flags interval;`,
    `\t\telements = { ${f.nets.join(", ")} }`,
    "\t}",
  ]);
  const from = (f: (typeof families)[number]) => `${f.ip} saddr @${f.set}`;
  const nat: string[] = [];
  const input: string[] = [];
  const forward: string[] = [];
  const local = [spec.http?.listener, spec.https?.listener, spec.proxyPort].filter(
    (p): p is number => p !== undefined,
  );
  for (const f of families) {
    if (spec.http)
      nat.push(
        `${from(f)} tcp dport ${spec.http.port} redirect to :${spec.http.listener} comment ${quote("plain HTTP: decided by its Host")}`,
      );
    if (spec.https)
      nat.push(
        `${from(f)} tcp dport ${spec.https.port} redirect to :${spec.https.listener} comment ${quote("TLS: decided by its server name")}`,
      );
    if (spec.dns !== null) {
      nat.push(
        `${from(f)} udp dport 53 redirect to :${spec.dns} comment ${quote("DNS: the shield answers")}`,
      );
      nat.push(`${from(f)} tcp dport 53 redirect to :${spec.dns} comment ${quote("DNS over TCP")}`);
    }
    input.push(`${from(f)} ct state established,related accept`);
    input.push(
      `${from(f)} tcp dport { ${local.join(", ")} } accept comment ${quote("the shield's listeners")}`,
    );
    if (spec.dns !== null)
      input.push(
        `${from(f)} meta l4proto { tcp, udp } th dport ${spec.dns} accept comment ${quote("the shield's resolver")}`,
      );
    if (f.ip === "ip6")
      input.push(
        `${from(f)} icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept comment ${quote("IPv6 neighbour discovery on the link")}`,
      );
    input.push(`${from(f)} counter drop comment ${quote("anything else an agent sends the shield")}`);
    forward.push(`${from(f)} counter drop comment ${quote("never routed as it is")}`);
    forward.push(
      `${f.ip} daddr @${f.set} counter drop comment ${quote("nothing is routed to the agents either")}`,
    );
  }
  const chain = (name: string, head: string, rules: string[]) => [
    `\tchain ${name} {`,
    `\t\t${head}`,
    ...rules.map((l) => `\t\t${l}`),
    "\t}",
  ];
  return [
    "#!/usr/sbin/nft -f",
    `# clawguard shield gateway: agents on ${spec.networks.join(", ")} reach nothing but the shield.`,
    "# Written by clawguard shield gateway; `clawguard shield gateway rollback` removes it.",
    `table ${GATEWAY_FAMILY} ${GATEWAY_TABLE} {}`,
    `delete table ${GATEWAY_FAMILY} ${GATEWAY_TABLE}`,
    `table ${GATEWAY_FAMILY} ${GATEWAY_TABLE} {`,
    ...sets,
    ...chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;", nat),
    ...chain("input", "type filter hook input priority filter; policy accept;", input),
    ...chain("forward", "type filter hook forward priority filter; policy accept;", forward),
    "}",
    "",
  ].join("\n");
}
