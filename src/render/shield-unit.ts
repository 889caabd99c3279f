/**
 * The shield's own systemd unit and config skeleton. The shield is a Node.js process that needs
 * sockets, its config directory (the rules API saves shield.yaml) and its state directory (the
 * audit log), and nothing else: no shell, no capabilities (it listens above 1024), no devices.
 */

import { SHIELD_NODE_FLAGS } from "../shield/node-flags.js";

export interface ShieldUnitOptions {
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of bin/clawguard.js. */
  bin: string;
  configDir: string;
  user: string;
  /** The WireGuard interface the proxy listens on: the unit starts after it. */
  wireguardInterface?: string;
}

export const SHIELD_UNIT_NAME = "clawguard-shield.service";
export const SHIELD_STATE_DIR = "/var/lib/clawguard-shield";

// Every address except 169.254.0.0/16 and 224.0.0.0/3 (multicast, reserved, broadcast).
const IPV4_ALLOW = [
  "0.0.0.0/1",
  "128.0.0.0/3",
  "160.0.0.0/5",
  "168.0.0.0/8",
  "169.0.0.0/9",
  "169.128.0.0/10",
  "169.192.0.0/11",
  "169.224.0.0/12",
  "169.240.0.0/13",
  "169.248.0.0/14",
  "169.252.0.0/15",
  "169.255.0.0/16",
  "170.0.0.0/7",
  "172.0.0.0/6",
  "176.0.0.0/4",
  "192.0.0.0/3",
].join(" ");
// Every address except fe80::/10 (link-local) and ff00::/8 (multicast).
const IPV6_ALLOW = [
  "::/1",
  "8000::/2",
  "c000::/3",
  "e000::/4",
  "f000::/5",
  "f800::/6",
  "fc00::/7",
  "fe00::/9",
  "fec0::/10",
].join(" ");

export function renderShieldUnit(o: ShieldUnitOptions): string {
  const config = `${o.configDir.replace(/\/+$/, "")}/shield.yaml`;
  // The proxy binds the tunnel's address, which exists only once the interface is up. The
  // interface does not depend on the proxy: restarting the shield leaves every tunnel as it is.
  const wg = o.wireguardInterface !== undefined ? ` wg-quick@${o.wireguardInterface}.service` : "";
  return `# Written by clawguard shield install. Reload the config with: systemctl reload clawguard-shield
[Unit]
Description=clawguard shield: egress proxy for AI agents
After=network-online.target${wg}
Wants=network-online.target${wg}

[Service]
Type=simple
ExecStart=${o.node} ${SHIELD_NODE_FLAGS.join(" ")} ${o.bin} shield run --config ${config}
# SIGHUP re-reads shield.yaml; a file that fails validation leaves the running policy in force.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
User=${o.user}
Group=${o.user}
# The audit log lives here (log.path in shield.yaml).
StateDirectory=clawguard-shield
StateDirectoryMode=0700
# The rules API writes shield.yaml back (temp file + rename in this directory).
ReadWritePaths=${o.configDir}
UMask=0077

NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateUsers=yes
PrivateIPC=yes
PrivateMounts=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectProc=invisible
ProcSubset=pid
# AF_NETLINK: listing local addresses, which a wildcard listen address needs. No AF_UNIX:
# name lookups fall back from nss sockets to DNS over UDP.
RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK
# The kernel keeps link-local (the cloud metadata service at 169.254.169.254, fe80::/10) and
# multicast out of reach of the shield process, whatever its policy code decides.
IPAddressDeny=any
IPAddressAllow=${IPV4_ALLOW}
IPAddressAllow=${IPV6_ALLOW}
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
KeyringMode=private
DevicePolicy=closed
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
# Back from @resources: the log writer thread drops to nice 19 while it keeps up and returns to
# nice 0 when records pile up, which LimitNICE permits (never below 0).
SystemCallFilter=setpriority
LimitNICE=+0
# A refused call fails with EPERM instead of killing Node.js at start.
SystemCallErrorNumber=EPERM
# No MemoryDenyWriteExecute: V8 needs writable and executable pages.

[Install]
WantedBy=multi-user.target
`;
}

export interface SkeletonWireguard {
  iface: string;
  listenPort: number;
  /** "10.77.0.1/16" ...: the first one's address is where the proxy listens. */
  addresses: string[];
  privateKeyFile: string;
  endpoint: string;
}

function listenSection(wg: SkeletonWireguard | undefined): string {
  if (!wg)
    return `# Where agents connect. Agents should reach the shield over WireGuard: run
# clawguard shield install --wireguard --endpoint HOST:PORT, and listen on the tunnel's address.
# On a private network of your own, listen on this server's private address instead. A public
# or wildcard address (0.0.0.0) needs allow_cleartext: true: tokens, destinations and CONNECT
# lines would cross the internet in cleartext.
listen: 127.0.0.1:3128`;
  const proxy = wg.addresses[0]!.split("/")[0]!;
  return `# Where agents connect: the shield's address on the WireGuard tunnel, the only way in.
listen: ${proxy}:3128

# The tunnel agents reach the proxy through. Enrol agents with clawguard shield enroll ID;
# clawguard-shield-wireguard (root) gives them to the interface.
wireguard:
  interface: ${wg.iface}
  listen_port: ${wg.listenPort}
  # The shield's address in each range; agents get the next free one.
  address: [${wg.addresses.join(", ")}]
  private_key_file: ${wg.privateKeyFile}
  # What join codes tell agents to send to: this server's public address and UDP port.
  endpoint: "${wg.endpoint}"`;
}

/** A shield.yaml that starts (every destination denied) and says where everything goes. */
export function renderShieldConfigSkeleton(o: { configDir: string; wireguard?: SkeletonWireguard }): string {
  return `# clawguard shield configuration. Check it with: clawguard shield check --config ${o.configDir}/shield.yaml
# (the shield refuses to start on any error), then: systemctl enable --now clawguard-shield
# What would an agent be allowed? clawguard shield check --config ${o.configDir}/shield.yaml --agent ID https://host
# Reload after editing: systemctl reload clawguard-shield (a file with errors is not applied).

${listenSection(o.wireguard)}

# enforce: only what a rule allows. audit: everything passes, would-be denials are logged.
# lockdown: nothing passes.
mode: enforce

log:
  # The tamper-evident audit log (SQLite); query it with: clawguard shield log
  path: ${SHIELD_STATE_DIR}/shield.db
  retention_days: 90

# The operator API and dashboard. Keep it on loopback and reach it through an SSH tunnel:
#   ssh -L 9090:127.0.0.1:9090 shield-host, then open http://127.0.0.1:9090/
admin:
  listen: 127.0.0.1:9090
  # Bearer token for the API, the CLI (clawguard shield status) and the dashboard; mode 600.
  token_file: admin.token

# Rules: host, *.domain, host:port, or a CIDR; deny beats allow at every level.
allow: []
deny: []

# What each agent may send per window (bytes up: request heads, bodies, tunnel bytes; and
# requests opened). A spent budget refuses; a transfer that would pass it is cut. Any level can
# set one (here, a tier, a fleet or an agent); every one of them holds.
#budget: { upload: 200MB, requests: 20000, window: 1h }

# Rules shared by a class of agents.
tiers: {}
#  crew:
#    allow: ["api.anthropic.com:443", "*.github.com:443"]
#    budget: { upload: 50MB, window: 1h }

# Agents that may see each other (isolation: fleet) or not (isolated, the default).
fleets: {}
#  acme:
#    isolation: isolated
#    # shared: one budget for the whole fleet together, not one per agent
#    budget: { upload: 5GB, window: 1d, shared: true }

# One entry per agent.${o.wireguard ? " clawguard shield enroll ID adds one on the tunnel;" : ""}
# \`clawguard shield agents add ID [--tier T]\` writes one with a new token, printed once.
agents: []
${
  o.wireguard
    ? `#  - id: scout
#    tier: crew
#    sources: [10.77.0.2/32, "fd77:77::2/128"]
#    wireguard: { public_key: "<the agent's key>" }
# An agent that is not on the tunnel gives a token (the sha256 of its proxy password:
#   printf %s "$TOKEN" | sha256sum) and/or its source addresses.`
    : `#  - id: scout
#    tier: crew
#    token_sha256: "<64 hex characters>"   # printf %s "$TOKEN" | sha256sum
#    sources: [192.168.1.7/32]`
}
`;
}
