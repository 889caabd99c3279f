/**
 * Where the lockdown's files live, and the units it writes: the boot unit that loads the egress
 * rules before any interface is up, and the drop-in that sends a service through the shield and
 * lets systemd refuse it every other address. Pure.
 */
import { IPT_CHAIN, NFT_FAMILY, NFT_TABLE } from "../render/nftables.js";

export const RULES_DIR = "/etc/clawguard";
export const NFT_FILE = "/etc/clawguard/lockdown.nft";
export const IPT_FILES = {
  4: "/etc/clawguard/lockdown.v4.rules",
  6: "/etc/clawguard/lockdown.v6.rules",
} as const;
export const UNIT_NAME = "clawguard-lockdown.service";
export const UNIT_FILE = `/etc/systemd/system/${UNIT_NAME}`;
export const WANTS_LINK = `/etc/systemd/system/multi-user.target.wants/${UNIT_NAME}`;
export const DROPIN_NAME = "50-clawguard-egress.conf";

export type Backend = "nft" | "iptables";

const HEADER = "# Written by clawguard lockdown; `clawguard lockdown rollback` removes it.";

export function renderLockdownUnit(backend: Backend): string {
  const exec =
    backend === "nft"
      ? [
          `ExecStart=/usr/sbin/nft -f ${NFT_FILE}`,
          `ExecStop=/usr/sbin/nft delete table ${NFT_FAMILY} ${NFT_TABLE}`,
        ]
      : [
          `ExecStartPre=-/usr/sbin/iptables -D OUTPUT -j ${IPT_CHAIN}`,
          `ExecStartPre=-/usr/sbin/ip6tables -D OUTPUT -j ${IPT_CHAIN}`,
          `ExecStart=/usr/sbin/iptables-restore --noflush ${IPT_FILES[4]}`,
          `ExecStart=/usr/sbin/ip6tables-restore --noflush ${IPT_FILES[6]}`,
          ...["iptables", "ip6tables"].flatMap((t) => [
            `ExecStop=-/usr/sbin/${t} -D OUTPUT -j ${IPT_CHAIN}`,
            `ExecStop=-/usr/sbin/${t} -F ${IPT_CHAIN}`,
            `ExecStop=-/usr/sbin/${t} -X ${IPT_CHAIN}`,
          ]),
        ];
  return [
    HEADER,
    "[Unit]",
    "Description=clawguard egress lockdown: nothing leaves except through the shield",
    // Loaded before any interface is up, and after the distribution's firewall, whose
    // `flush ruleset` would otherwise remove the table it loaded first.
    "DefaultDependencies=no",
    "Wants=network-pre.target",
    "Before=network-pre.target",
    "After=local-fs.target nftables.service ufw.service netfilter-persistent.service",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    ...exec,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export function renderGatewayDropIn(proxyUrl: string, shieldAddresses: string[]): string {
  return [
    HEADER,
    "# The gateway talks to the internet only through the shield; systemd refuses any other address.",
    "[Service]",
    `Environment=OPENCLAW_PROXY_URL=${proxyUrl}`,
    `Environment=HTTPS_PROXY=${proxyUrl}`,
    `Environment=HTTP_PROXY=${proxyUrl}`,
    `Environment=https_proxy=${proxyUrl}`,
    `Environment=http_proxy=${proxyUrl}`,
    "Environment=NO_PROXY=localhost,127.0.0.1,::1",
    "Environment=no_proxy=localhost,127.0.0.1,::1",
    "IPAddressDeny=any",
    "IPAddressAllow=localhost",
    ...shieldAddresses.map((a) => `IPAddressAllow=${a}`),
    "",
  ].join("\n");
}
