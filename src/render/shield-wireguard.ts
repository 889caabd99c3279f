/**
 * The shield's side of the agents' tunnels, as text: the wg-quick config of the interface, the
 * unit of the root daemon that keeps its peers in step with shield.yaml, the peers as `wg
 * syncconf` reads them, and the nftables table that lets agents reach the proxy port and nothing
 * else. Pure.
 */

export const SHIELD_WG_TABLE = "clawguard_shield_wg";
export const SYNC_UNIT_NAME = "clawguard-shield-wireguard.service";

export interface ShieldWgQuickOptions {
  iface: string;
  /** The interface's addresses with their ranges: "10.77.0.1/16". */
  addresses: string[];
  listenPort: number;
  privateKeyFile: string;
  /** The command that loads the table and the peers from shield.yaml, once. */
  syncOnce: string;
}

/**
 * Peers are not listed here: they live in shield.yaml, and the sync daemon gives them to the
 * running interface. The private key stays in its own file, read by `wg set` as the interface
 * comes up, so this file holds no secret the key file does not.
 */
export function renderShieldWgQuick(o: ShieldWgQuickOptions): string {
  return [
    "# Written by clawguard shield install --wireguard. Agents are added and removed in shield.yaml",
    `# (clawguard shield enroll / revoke); ${SYNC_UNIT_NAME} gives them to the running interface.`,
    "[Interface]",
    `Address = ${o.addresses.join(", ")}`,
    `ListenPort = ${o.listenPort}`,
    `PostUp = wg set %i private-key ${o.privateKeyFile}`,
    // The table that keeps agents to the proxy port is loaded before any peer can send.
    `PostUp = ${o.syncOnce}`,
    `PreDown = nft delete table inet ${SHIELD_WG_TABLE} || true`,
    "",
  ].join("\n");
}

export interface PeerEntry {
  publicKey: string;
  allowedIps: string[];
  presharedKey?: string;
}

/**
 * `wg syncconf` input. syncconf treats an absent private key or port as "none", so both are
 * given; it then changes only what differs, and peers that did not change keep their sessions.
 */
export function renderPeersConf(privateKey: string, listenPort: number, peers: readonly PeerEntry[]): string {
  const out = ["[Interface]", `PrivateKey = ${privateKey}`, `ListenPort = ${listenPort}`];
  for (const p of peers) {
    out.push("", "[Peer]", `PublicKey = ${p.publicKey}`);
    if (p.presharedKey !== undefined) out.push(`PresharedKey = ${p.presharedKey}`);
    out.push(`AllowedIPs = ${p.allowedIps.join(", ")}`);
  }
  return out.join("\n") + "\n";
}

export interface ShieldWgNftOptions {
  iface: string;
  /** The shield's own tunnel addresses (no prefix). */
  shieldAddresses: string[];
  /** Where the proxy listens; agents may open TCP to this and nothing else. */
  proxy: { host: string; port: number };
}

function fam(addr: string): "ip" | "ip6" {
  return addr.includes(":") ? "ip6" : "ip";
}

/**
 * Agents reach the proxy port on the shield's tunnel address and nothing else: not the admin
 * port, not SSH, not each other (nothing is forwarded in or out of the tunnel). The tunnel
 * addresses answer only on the tunnel: a host on the internet routing 10.77.0.1 to the shield's
 * public address gets nothing. Loading the file replaces the table in one transaction.
 */
export function renderShieldWgNft(o: ShieldWgNftOptions): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, "")}"`;
  const iface = q(o.iface);
  const proxy = o.shieldAddresses.includes(o.proxy.host)
    ? [`${fam(o.proxy.host)} daddr ${o.proxy.host} tcp dport ${o.proxy.port} accept comment "the proxy"`]
    : [];
  return [
    "#!/usr/sbin/nft -f",
    "# Written by clawguard shield wireguard-sync from shield.yaml: agents reach the proxy and nothing else.",
    `table inet ${SHIELD_WG_TABLE} {}`,
    `delete table inet ${SHIELD_WG_TABLE}`,
    `table inet ${SHIELD_WG_TABLE} {`,
    "\tchain input {",
    "\t\ttype filter hook input priority -10; policy accept;",
    `\t\tiifname ${iface} jump from_agents`,
    ...o.shieldAddresses.map(
      (a) =>
        `\t\t${fam(a)} daddr ${a} iifname != "lo" counter drop comment "the tunnel address answers only through the tunnel"`,
    ),
    "\t}",
    "\tchain from_agents {",
    "\t\tct state established,related accept",
    ...proxy.map((r) => `\t\t${r}`),
    `\t\tcounter drop comment "anything else an agent sends the shield"`,
    "\t}",
    "\tchain forward {",
    "\t\ttype filter hook forward priority -10; policy accept;",
    `\t\tiifname ${iface} counter drop comment "no agent reaches another agent, or anything past the shield"`,
    `\t\toifname ${iface} counter drop comment "nothing is routed into the tunnel"`,
    "\t}",
    "}",
    "",
  ].join("\n");
}

export interface SyncUnitOptions {
  node: string;
  bin: string;
  configFile: string;
  iface: string;
}

/**
 * The root daemon that applies shield.yaml's peers to the interface and publishes its status.
 * It is the only part of the shield with CAP_NET_ADMIN; the proxy never gets it.
 */
export function renderSyncUnit(o: SyncUnitOptions): string {
  return `# Written by clawguard shield install --wireguard.
[Unit]
Description=clawguard shield: the WireGuard peers of ${o.iface} follow shield.yaml
After=wg-quick@${o.iface}.service
Requires=wg-quick@${o.iface}.service
PartOf=wg-quick@${o.iface}.service

[Service]
Type=simple
ExecStart=${o.node} ${o.bin} shield wireguard-sync --config ${o.configFile}
Restart=always
RestartSec=2s
# The peers' status for the shield (no keys in it): /run/clawguard-wireguard/${o.iface}.json
RuntimeDirectory=clawguard-wireguard
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
# shield.yaml as last read, for the next shield enroll (root's): /var/cache/clawguard/shield-config
CacheDirectory=clawguard/shield-config
CacheDirectoryMode=0700
UMask=0027
# Peers and the table (netlink), shield.yaml in the shield's own directory, the status's group.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_DAC_READ_SEARCH CAP_CHOWN
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=-/run/wireguard
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`;
}
