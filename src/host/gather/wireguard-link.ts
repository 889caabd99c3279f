import { ok, type Fact, type Problem } from "../../facts/fact.js";
import {
  peerAllowedIps,
  proxyHostOf,
  WG_DIR,
  type WireguardConfigFact,
  type WireguardLinkFact,
} from "../../facts/wireguard-link.js";
import type { FactContext } from "../context.js";
import { HostError, toProblem } from "../errors.js";
import { gather } from "./guard.js";

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
    const oc = await ctx.get("openclaw");
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
