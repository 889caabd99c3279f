import type { Facts } from "../facts/keys.js";
import { LOCKDOWN_FILE, LOCKDOWN_TABLE, LOCKDOWN_UNIT, type LockdownState } from "../facts/lockdown.js";
import type { GatewayUnit } from "../facts/openclaw.js";
import { proxyHostOf, type WireguardLinkFact } from "../facts/wireguard-link.js";
import { cidrContains, classify, parseCidr, parseIP } from "../net/addresses.js";
import { catalog, need, type FindingMaker } from "./catalog.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";

const C = catalog("egress", {
  proxy_configured: {
    severity: "high",
    title: "The gateway's unit sends its traffic through the shield (OPENCLAW_PROXY_URL and HTTPS_PROXY)",
    remediation:
      "add to the unit: Environment=OPENCLAW_PROXY_URL=http://SHIELD:3128 HTTPS_PROXY=http://SHIELD:3128 NO_PROXY=127.0.0.1,localhost",
    fixable: true,
  },
  unit_ip_filter: {
    severity: "medium",
    title: "The unit itself may reach only the shield (IPAddressDeny=any with IPAddressAllow=)",
    remediation: "add to [Service]: IPAddressDeny=any and IPAddressAllow=localhost SHIELD_IP",
    fixable: true,
  },
  lockdown_persisted: {
    severity: "high",
    title: `The outbound lockdown is saved in ${LOCKDOWN_FILE}`,
    remediation: "clawguard lockdown --shield SHIELD_IP:PORT",
    fixable: true,
  },
  lockdown_enabled: {
    severity: "high",
    title: `${LOCKDOWN_UNIT} loads the lockdown at boot`,
    remediation: `systemctl enable ${LOCKDOWN_UNIT}`,
    fixable: true,
  },
  direct_route: {
    severity: "medium",
    title: "No route leads out of this server except through the shield",
    remediation:
      "put the server on a private network whose only gateway is the shield (on the shield: clawguard shield gateway --config shield.yaml --apply), or let the provider's firewall allow this server's egress only to the shield",
    fixable: false,
  },
  lockdown_live: {
    severity: "high",
    title: `The kernel enforces the lockdown now (table ${LOCKDOWN_TABLE}, output policy drop)`,
    remediation: `systemctl restart ${LOCKDOWN_UNIT} (or: nft -f ${LOCKDOWN_FILE})`,
    fixable: true,
  },
  link_encrypted: {
    severity: "high",
    title:
      "The gateway reaches its proxy over WireGuard (or on this server), never in cleartext across a network",
    remediation:
      "join the shield over WireGuard: on the shield, `clawguard shield enroll ID --config /etc/clawguard/shield.yaml`; then on this server, `clawguard lockdown --join CODE --apply`",
    fixable: false,
  },
});

const UNIT_CHECKS: FindingMaker[] = [C.proxy_configured, C.unit_ip_filter, C.link_encrypted];

function envAt(u: GatewayUnit, key: string): string {
  return u.environmentAt[key] ?? u.path;
}

function checkProxy(u: GatewayUnit): Finding {
  const env = u.environment;
  const has = (k: string) => (env[k] ?? env[k.toLowerCase()] ?? "") !== "";
  const shown = ["OPENCLAW_PROXY_URL", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"]
    .filter((k) => has(k))
    .map((k) => `${k}=${env[k] ?? env[k.toLowerCase()]} (${envAt(u, k)})`);
  const excerpt = shown.length ? shown.join("; ") : "no proxy variable in Environment= or EnvironmentFile=";
  const noProxy = env.NO_PROXY ?? env.no_proxy ?? "";
  if (noProxy.split(",").some((x) => x.trim() === "*"))
    return C.proxy_configured.fail(
      { source: envAt(u, "NO_PROXY"), excerpt },
      { detail: "NO_PROXY=* sends everything around the shield" },
    );
  if (has("OPENCLAW_PROXY_URL") && has("HTTPS_PROXY"))
    return C.proxy_configured.pass({ source: envAt(u, "OPENCLAW_PROXY_URL"), excerpt });
  if (has("OPENCLAW_PROXY_URL") || has("HTTPS_PROXY") || has("HTTP_PROXY")) {
    const missing = ["OPENCLAW_PROXY_URL", "HTTPS_PROXY"].filter((k) => !has(k));
    return C.proxy_configured.warn(
      { source: u.path, excerpt },
      {
        detail:
          has("HTTP_PROXY") && missing.length === 2
            ? "Only HTTP_PROXY is set: OpenClaw honours it in some features only"
            : `The proxy is only partly set: ${missing.join(" and ")} missing`,
      },
    );
  }
  return C.proxy_configured.fail(
    { source: u.path, excerpt },
    { detail: "The gateway reaches the internet directly: no proxy configured" },
  );
}

function checkIpFilter(u: GatewayUnit): Finding {
  const deny = (u.directives.IPAddressDeny ?? []).flatMap((v) => v.split(/\s+/));
  const allow = (u.directives.IPAddressAllow ?? []).flatMap((v) => v.split(/\s+/));
  const excerpt = `IPAddressDeny=${deny.join(" ") || "(unset)"} IPAddressAllow=${allow.join(" ") || "(unset)"}`;
  const ok = deny.includes("any") && allow.length > 0 && !allow.includes("any");
  return C.unit_ip_filter.verdict(ok, { source: u.directiveAt.IPAddressDeny ?? u.path, excerpt });
}

function checkLockdown(l: LockdownState): Finding[] {
  const out: Finding[] = [];
  if (l.fileProblem) out.push(C.lockdown_persisted.error(l.fileProblem));
  else if (!l.file)
    out.push(
      C.lockdown_persisted.fail(
        { source: LOCKDOWN_FILE, excerpt: "does not exist" },
        { detail: "No outbound lockdown is saved" },
      ),
    );
  else {
    const good = l.file.hasTable && l.file.dropsOutput;
    out.push(
      C.lockdown_persisted.verdict(
        good,
        {
          source: LOCKDOWN_FILE,
          excerpt: `table ${LOCKDOWN_TABLE} ${l.file.hasTable ? "present" : "absent"}, output policy ${l.file.dropsOutput ? "drop" : "not drop"}`,
        },
        good ? undefined : { detail: `${LOCKDOWN_FILE} does not drop outbound traffic by default` },
      ),
    );
  }
  if (!l.unit)
    out.push(
      C.lockdown_enabled.fail(
        { source: "/etc/systemd/system", excerpt: `no ${LOCKDOWN_UNIT}` },
        { detail: "Nothing loads the lockdown at boot" },
      ),
    );
  else
    out.push(
      C.lockdown_enabled.verdict(l.unit.enabled, {
        source: l.unit.enabledBy ?? l.unit.path,
        excerpt: l.unit.enabled
          ? `enabled (${l.unit.enabledBy})`
          : "installed but not enabled: the lockdown is gone after a reboot",
      }),
    );
  const live = l.live;
  if ("skip" in live) out.push(C.lockdown_live.skip(live.skip, `nft list table ${LOCKDOWN_TABLE}`));
  else if ("problem" in live) out.push(C.lockdown_live.error(live.problem));
  else if ("absent" in live)
    out.push(
      C.lockdown_live.fail(
        { source: live.command, excerpt: live.absent },
        { detail: "The kernel has no lockdown table: outbound traffic is unrestricted" },
      ),
    );
  else
    out.push(
      C.lockdown_live.verdict(live.table.dropsOutput, {
        source: live.command,
        excerpt: live.table.dropsOutput
          ? "output chain, policy drop"
          : "table loaded but its output chain does not drop by default",
      }),
    );
  return out;
}

type EgressFacts = Pick<Facts, "openclaw" | "lockdown" | "routes" | "wireguardLink">;

/**
 * The proxy's address is on this server, or a WireGuard interface carries it: up now and the
 * route to it leaving by that interface, or, where commands cannot run, a config whose peer
 * carries it and that wg-quick brings up at boot.
 */
function checkLink(u: GatewayUnit, wg: WireguardLinkFact | null, wgProblem: string | null): Finding {
  const host = proxyHostOf(u.environment);
  if (host === null)
    return C.link_encrypted.skip("the unit names no proxy (see egress.proxy_configured)", u.path);
  const ip = parseIP(host);
  const source = envAt(u, u.environment.OPENCLAW_PROXY_URL ? "OPENCLAW_PROXY_URL" : "HTTPS_PROXY");
  if (ip === null)
    return C.link_encrypted.fail(
      { source, excerpt: `proxy ${host} is a name: which path it takes is up to the resolver` },
      { detail: "The gateway's proxy is a name, so nothing says its traffic is encrypted on the way" },
    );
  if (classify(ip).class === "loopback")
    return C.link_encrypted.pass({ source, excerpt: `proxy ${host} is on this server` });
  if (wg === null) return C.link_encrypted.skip(wgProblem ?? "WireGuard state not read", source);
  const carriers = wg.configs.filter((c) =>
    c.allowedIps.some((a) => {
      const cidr = parseCidr(a);
      return typeof cidr !== "string" && cidrContains(cidr, ip);
    }),
  );
  if ("interfaces" in wg.live) {
    const dev = wg.routes[host] ?? null;
    const viaWg = dev !== null && wg.live.interfaces.includes(dev);
    return C.link_encrypted.verdict(
      viaWg,
      {
        source: `ip route get ${host}`,
        excerpt: viaWg
          ? `dev ${dev}: a WireGuard interface, up`
          : `dev ${dev ?? "(no route)"}${carriers.length ? `; ${carriers.map((c) => c.path).join(", ")} would carry it, but is not up` : ""}`,
      },
      viaWg
        ? undefined
        : {
            detail: `The gateway reaches its proxy ${host} without WireGuard: tokens, destinations and CONNECT lines cross the network in cleartext`,
          },
    );
  }
  const boot = carriers.filter((c) => c.enabled);
  return C.link_encrypted.verdict(
    boot.length > 0,
    {
      source: boot[0]?.path ?? "/etc/wireguard",
      excerpt:
        boot.length > 0
          ? `carries ${host} and wg-quick@${boot[0]!.iface} starts at boot (not checked live: ${wg.live.skip})`
          : `no WireGuard config that starts at boot carries ${host}`,
    },
    boot.length > 0 ? undefined : { detail: `The gateway reaches its proxy ${host} without WireGuard` },
  );
}

/** The hosts the gateway units send their traffic through: the shield, as this server knows it. */
function proxyHosts(units: GatewayUnit[]): Set<string> {
  return new Set(units.map((u) => proxyHostOf(u.environment)).filter((h): h is string => h !== null));
}

/**
 * Root on this server can flush any rule kept here; a route that leads out is the door those
 * rules hold shut. No such route, or one whose next hop is the shield (gateway mode), holds
 * whatever root does here. Otherwise the provider's firewall may hold it, which no check here
 * can see: a warning, not a failure.
 */
function checkRoute(routes: Facts["routes"], shield: Set<string>): Finding {
  const source = "/proc/net/route, /proc/net/ipv6_route";
  if (routes.status === "skip") return C.direct_route.skip(routes.reason, source);
  if (routes.status === "error") return C.direct_route.error(routes.problems[0]!);
  const ways = routes.value.defaults;
  const text = ways.map((d) => `default${d.via ? ` via ${d.via}` : ""} dev ${d.dev}`).join("; ");
  if (ways.length === 0)
    return C.direct_route.pass({ source, excerpt: "no default route: only the local networks" });
  const out = ways.filter((d) => d.via === null || !shield.has(d.via));
  if (out.length === 0) return C.direct_route.pass({ source, excerpt: `${text}: the shield is the gateway` });
  return C.direct_route.warn(
    {
      source,
      excerpt: `${text}${shield.size > 0 ? ` (the shield is ${[...shield].join(", ")})` : ""}: root here can flush the rules that hold it shut`,
    },
    { detail: "A route leads out of this server past the shield" },
  );
}

export function checkEgress({
  openclaw,
  lockdown,
  routes,
  wireguardLink: wireguard,
}: EgressFacts): Finding[] {
  const out: Finding[] = [];
  const oc = need(openclaw, C.proxy_configured, out);
  if (oc) {
    const units = [
      ...new Map(oc.installs.flatMap((i) => (i.unit ? [[i.unit.path, i.unit] as const] : []))).values(),
    ];
    if (oc.installs.length === 0) for (const m of UNIT_CHECKS) out.push(m.skip("OpenClaw is not installed"));
    else if (units.length === 0)
      for (const m of UNIT_CHECKS)
        out.push(
          m.fail(
            { source: "/etc/systemd/system", excerpt: "no unit runs the gateway, so nothing sets its proxy" },
            { detail: "No unit runs the gateway: its egress is not controlled" },
          ),
        );
    const wg = wireguard.status === "ok" ? wireguard.value : null;
    const wgProblem =
      wireguard.status === "skip"
        ? wireguard.reason
        : wireguard.status === "error"
          ? wireguard.problems.map((p) => `${p.source}: ${p.message}`).join("; ")
          : null;
    for (const u of units) out.push(checkProxy(u), checkIpFilter(u), checkLink(u, wg, wgProblem));
    if (oc.installs.length > 0) out.push(checkRoute(routes, proxyHosts(units)));
  }
  if (oc && oc.installs.length === 0) {
    for (const m of [C.lockdown_persisted, C.lockdown_enabled, C.lockdown_live])
      out.push(m.skip("OpenClaw is not installed"));
    return out;
  }
  const l = need(lockdown, C.lockdown_persisted, out);
  if (l) out.push(...checkLockdown(l));
  return out;
}

export const egressLayer = defineLayer({
  layer: "egress",
  needs: ["openclaw", "lockdown", "routes", "wireguardLink"],
  check: checkEgress,
});
