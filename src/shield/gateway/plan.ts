/**
 * What `clawguard shield gateway` puts on the shield host: the `inet clawguard_gateway` table
 * as a file, a unit that loads it at every boot, and the link that enables the unit. Reading
 * what is there now is all the I/O; the rules themselves are rendered in render/.
 */
import type { Host } from "../../host/host.js";
import { current, currentLink, type PlannedFile, type PlannedLink } from "../../lockdown/plan.js";
import { unifiedDiff } from "../../render/diff.js";
import {
  GATEWAY_FAMILY,
  GATEWAY_TABLE,
  renderGatewayRuleset,
  type GatewaySpec,
} from "../../render/gateway-nftables.js";
import type { ShieldConfig } from "../config.js";

export const GATEWAY_NFT = "/etc/clawguard/gateway.nft";
export const GATEWAY_UNIT = "clawguard-gateway.service";
export const GATEWAY_UNIT_FILE = `/etc/systemd/system/${GATEWAY_UNIT}`;
export const GATEWAY_WANTS = `/etc/systemd/system/multi-user.target.wants/${GATEWAY_UNIT}`;

export interface GatewayPlan {
  schema: "clawguard.shield-gateway-plan/v1";
  root: string;
  spec: GatewaySpec;
  ruleset: string;
  files: PlannedFile[];
  links: PlannedLink[];
  notes: string[];
}

export function gatewaySpec(cfg: ShieldConfig): GatewaySpec {
  const gw = cfg.gateway;
  if (!gw) throw new Error("no gateway section");
  return { networks: gw.networks, http: gw.http, https: gw.https, dns: gw.dns, proxyPort: cfg.listen.port };
}

export function renderGatewayUnit(): string {
  return [
    "# Written by clawguard shield gateway; `clawguard shield gateway rollback` removes it.",
    "[Unit]",
    "Description=clawguard shield gateway: the agents' network reaches nothing but the shield",
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
    `ExecStart=/usr/sbin/nft -f ${GATEWAY_NFT}`,
    `ExecStop=/usr/sbin/nft delete table ${GATEWAY_FAMILY} ${GATEWAY_TABLE}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export async function planGateway(host: Host, cfg: ShieldConfig): Promise<GatewayPlan> {
  const spec = gatewaySpec(cfg);
  const ruleset = renderGatewayRuleset(spec);
  const files: PlannedFile[] = [];
  const add = async (path: string, content: string, why: string) => {
    const before = await current(host, path);
    files.push({
      path,
      content,
      mode: 0o644,
      before,
      diff: unifiedDiff(before ?? "", content, before === null ? "/dev/null" : path, path),
      why,
    });
  };
  await add(GATEWAY_NFT, ruleset, `the ruleset, loaded at boot by ${GATEWAY_UNIT}`);
  await add(GATEWAY_UNIT_FILE, renderGatewayUnit(), "loads the rules at every boot");
  const links: PlannedLink[] = [
    { path: GATEWAY_WANTS, target: GATEWAY_UNIT_FILE, before: await currentLink(host, GATEWAY_WANTS) },
  ];
  const notes = [
    `The agents on ${spec.networks.join(", ")} reach only the shield: ` +
      [
        spec.http
          ? `TCP ${spec.http.port} goes to the transparent HTTP listener (port ${spec.http.listener})`
          : null,
        spec.https
          ? `TCP ${spec.https.port} to the transparent TLS listener (port ${spec.https.listener})`
          : null,
        spec.dns !== null ? `DNS to the shield's resolver (port ${spec.dns})` : null,
        `the proxy port ${spec.proxyPort} stays open`,
      ]
        .filter((x) => x !== null)
        .join("; ") +
      ". Everything else from them is dropped and counted, forwarding included.",
    "The agents' default route must point at this server (gateway.listen); their provider network must give them no other way out.",
  ];
  return { schema: "clawguard.shield-gateway-plan/v1", root: host.root, spec, ruleset, files, links, notes };
}
