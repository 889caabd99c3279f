/**
 * How the gateway's proxy is reached: the WireGuard configs under /etc/wireguard (the networks
 * their peers carry, whether wg-quick brings them up at boot) and, where commands can run, the
 * interfaces up now and the interface the route to each proxy address leaves by.
 */
import type { FactContext } from "../context.js";
import { HostError } from "../errors.js";
import { gather, ok, toProblem, type Fact } from "../fact.js";
import type { Problem } from "../errors.js";
import { gatherOpenClaw } from "./openclaw.js";

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

async function liveState(
  ctx: FactContext,
  hosts: string[],
): Promise<Pick<WireguardLinkFact, "live" | "routes">> {
  const routes: Record<string, string | null> = Object.fromEntries(hosts.map((h) => [h, null]));
  try {
    const wg = await ctx.host.run("wg", ["show", "interfaces"], { timeoutMs: 10_000 });
    if (wg.code !== 0)
      return { live: { skip: `wg show interfaces: ${wg.stderr.trim() || `exit ${wg.code}`}` }, routes };
    for (const h of hosts) {
      const r = await ctx.host.run("ip", ["-o", "route", "get", h], { timeoutMs: 10_000 });
      routes[h] = r.code === 0 ? (/\bdev (\S+)/.exec(r.stdout)?.[1] ?? null) : null;
    }
    return { live: { interfaces: wg.stdout.trim().split(/\s+/).filter(Boolean) }, routes };
  } catch (err) {
    if (err instanceof HostError && (err.problem.kind === "unavailable" || err.problem.kind === "missing"))
      return { live: { skip: err.problem.message }, routes };
    throw err;
  }
}

export function gatherWireguardLink(ctx: FactContext): Promise<Fact<WireguardLinkFact>> {
  return gather(WG_DIR, async () => {
    const oc = await ctx.get(gatherOpenClaw);
    const hosts =
      oc.status === "ok"
        ? [
            ...new Set(
              oc.value.units.map((u) => proxyHostOf(u.environment)).filter((h): h is string => h !== null),
            ),
          ]
        : [];
    const configs: WireguardConfigFact[] = [];
    const problems: Problem[] = [];
    const sources: string[] = [];
    const entries = await ctx.host.readDir(WG_DIR).catch(() => []);
    for (const e of entries) {
      if (!e.name.endsWith(".conf")) continue;
      const p = `${WG_DIR}/${e.name}`;
      const iface = e.name.slice(0, -".conf".length);
      try {
        const allowedIps = peerAllowedIps(await ctx.host.readFile(p));
        const enabled =
          (await ctx.host.lstat(`/etc/systemd/system/multi-user.target.wants/wg-quick@${iface}.service`)) !==
          null;
        configs.push({ path: p, iface, allowedIps, enabled });
        sources.push(p);
      } catch (err) {
        problems.push(toProblem(p, err));
      }
    }
    return ok({ configs, ...(await liveState(ctx, hosts)) }, sources, problems);
  });
}
