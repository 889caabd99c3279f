/**
 * The agent-side egress rules of `clawguard lockdown`, as text: an nftables table of its own
 * (the normal case) and, only for systems without nft, the same rules as iptables-restore input.
 * Pure: the addresses come in already resolved and validated.
 */

export const NFT_TABLE = "clawguard_egress";
export const NFT_FAMILY = "inet";
export const IPT_CHAIN = "CLAWGUARD-EGRESS";
export const LOG_PREFIX = "clawguard-egress-drop ";

export interface EgressAllow {
  /** An address or CIDR, IPv4 or IPv6. */
  cidr: string;
  port: number;
  proto: "tcp" | "udp";
  why: string;
  /** Only out of this interface (the tunnel to the shield): elsewhere the same packet is dropped. */
  oif?: string;
}

export interface EgressSpec {
  /**
   * The shield's addresses (literals; a name was resolved and pinned before this). `via`: the
   * tunnel interface they are reached through; should the tunnel go down, packets for them would
   * follow the default route in cleartext, so they may leave by `via` only.
   */
  shield: { addresses: string[]; port: number; label: string; via?: string };
  sshPorts: number[];
  /** Operator-approved destinations besides the shield. */
  allowOut: EgressAllow[];
  /** Resolvers the agent may query directly (UDP and TCP 53). */
  dns: string[];
  /** DHCP and DHCPv6 client traffic, for servers that lease their address. */
  dhcp: boolean;
  /** Log dropped packets, rate limited. */
  log: boolean;
  /**
   * Filter routed traffic too: containers and VMs on this server (Docker sandboxes) send
   * through the forward hook, which the output chain never sees.
   */
  forward: boolean;
}

/** Bridges of local containers and VMs: traffic routed into them is inbound, not egress. */
export const GUEST_BRIDGES = ["docker0", "br-*", "virbr*", "lxcbr*"];

export function isV6(addr: string): boolean {
  return addr.includes(":");
}

/** Every allow rule as one list, the shield first: both renderers walk it in the same order. */
function allows(spec: EgressSpec): EgressAllow[] {
  return [
    ...spec.shield.addresses.map((a) => ({
      cidr: a,
      port: spec.shield.port,
      proto: "tcp" as const,
      why: `the shield ${spec.shield.label}`,
      ...(spec.shield.via !== undefined ? { oif: spec.shield.via } : {}),
    })),
    ...spec.dns.flatMap((a) => [
      { cidr: a, port: 53, proto: "udp" as const, why: "DNS allowed with --allow-dns" },
      { cidr: a, port: 53, proto: "tcp" as const, why: "DNS allowed with --allow-dns" },
    ]),
    ...spec.allowOut,
  ];
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, "")}"`;
}

/**
 * Loading the file replaces the table in one transaction: declaring the table first makes the
 * delete valid when it does not exist yet, so applying twice gives the same ruleset, and no
 * packet ever sees a half-loaded table.
 */
export function renderNftRuleset(spec: EgressSpec): string {
  const allowRules = allows(spec).map(
    (a) =>
      `${a.oif !== undefined ? `oifname ${quote(a.oif)} ` : ""}${isV6(a.cidr) ? "ip6" : "ip"} daddr ${a.cidr} ${a.proto} dport ${a.port} accept comment ${quote(a.why)}`,
  );
  const drop = (what: string) => [
    ...(spec.log ? [`limit rate 10/minute burst 5 packets log prefix ${quote(LOG_PREFIX)} level warn`] : []),
    `counter drop comment ${quote(what)}`,
  ];
  const r: string[] = [];
  r.push(`oif "lo" accept`);
  r.push(`ct state established,related accept`);
  if (spec.sshPorts.length > 0) {
    // Replies of SSH sessions that predate the table (conntrack may see them first mid-stream,
    // as NEW); a packet that opens a connection (SYN without ACK) from these ports is not a reply.
    r.push(
      `tcp sport { ${spec.sshPorts.join(", ")} } tcp flags & (syn | ack) != syn accept comment ${quote("replies of the operator's SSH")}`,
    );
  }
  r.push(...allowRules);
  r.push(
    `icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept comment ${quote("IPv6 neighbour discovery on the link")}`,
  );
  r.push(
    `ip6 daddr ff02::/16 icmpv6 type { mld-listener-report, mld2-listener-report } accept comment ${quote("multicast listener reports that neighbour discovery relies on")}`,
  );
  if (spec.dhcp) {
    r.push(`meta nfproto ipv4 udp sport 68 udp dport 67 accept comment ${quote("DHCP lease renewal")}`);
    r.push(`meta nfproto ipv6 udp sport 546 udp dport 547 accept comment ${quote("DHCPv6 lease renewal")}`);
  }
  r.push(...drop("everything else: IPv4 and IPv6, TCP, UDP and DNS"));
  const chain = (name: string, hook: string, rules: string[]) => [
    `\tchain ${name} {`,
    `\t\ttype filter hook ${hook} priority 0; policy drop;`,
    ...rules.map((l) => `\t\t${l}`),
    "\t}",
  ];
  const fwd = [
    `ct state established,related accept`,
    `oifname { ${GUEST_BRIDGES.map(quote).join(", ")} } accept comment ${quote("into local containers and VMs (inbound, or between them)")}`,
    ...allowRules,
    ...drop("routed out of local containers and VMs"),
  ];
  return [
    "#!/usr/sbin/nft -f",
    `# clawguard lockdown: nothing leaves this server except through the shield ${spec.shield.label}.`,
    "# Written by clawguard lockdown; `clawguard lockdown rollback` removes it.",
    `table ${NFT_FAMILY} ${NFT_TABLE} {}`,
    `delete table ${NFT_FAMILY} ${NFT_TABLE}`,
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    ...chain("output", "output", r),
    ...(spec.forward ? chain("forward", "forward", fwd) : []),
    "}",
    "",
  ].join("\n");
}

/**
 * The same rules for iptables-restore --noflush (family 4) or ip6tables-restore (family 6): the
 * chain declaration empties it, the jump from OUTPUT is inserted first. Whoever loads it deletes
 * an earlier jump first (`iptables -D OUTPUT -j CLAWGUARD-EGRESS`), or the jumps pile up.
 */
export function renderIptablesRules(spec: EgressSpec, family: 4 | 6): string {
  const c = `-A ${IPT_CHAIN}`;
  const icmp6 = (type: string) => `${c} -p ipv6-icmp -m icmp6 --icmpv6-type ${type}`;
  const r: string[] = [`${c} -o lo -j ACCEPT`, `${c} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`];
  if (spec.sshPorts.length > 0) {
    r.push(
      `${c} -p tcp -m tcp ! --tcp-flags SYN,ACK SYN -m multiport --sports ${spec.sshPorts.join(",")} -m comment --comment ${quote("replies of the operator's SSH")} -j ACCEPT`,
    );
  }
  for (const a of allows(spec)) {
    if (isV6(a.cidr) !== (family === 6)) continue;
    const cidr = a.cidr.includes("/") ? a.cidr : `${a.cidr}/${family === 6 ? 128 : 32}`;
    r.push(
      `${c}${a.oif !== undefined ? ` -o ${a.oif}` : ""} -d ${cidr} -p ${a.proto} -m ${a.proto} --dport ${a.port} -m comment --comment ${quote(a.why)} -j ACCEPT`,
    );
  }
  if (family === 6) {
    for (const t of ["router-solicitation", "neighbour-solicitation", "neighbour-advertisement"])
      r.push(`${icmp6(t)} -m hl --hl-eq 255 -j ACCEPT`);
    for (const t of ["131", "143"])
      r.push(`${c} -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`);
  }
  if (spec.dhcp) {
    r.push(
      family === 4
        ? `${c} -p udp -m udp --sport 68 --dport 67 -j ACCEPT`
        : `${c} -p udp -m udp --sport 546 --dport 547 -j ACCEPT`,
    );
  }
  if (spec.log)
    r.push(
      `${c} -m limit --limit 10/min --limit-burst 5 -j LOG --log-prefix ${quote(LOG_PREFIX)} --log-level 4`,
    );
  r.push(`${c} -j DROP`);
  return [
    `# clawguard lockdown (IPv${family}): nothing leaves this server except through the shield ${spec.shield.label}.`,
    "*filter",
    `:${IPT_CHAIN} - [0:0]`,
    ...r,
    `-I OUTPUT 1 -j ${IPT_CHAIN}`,
    "COMMIT",
    "",
  ].join("\n");
}
