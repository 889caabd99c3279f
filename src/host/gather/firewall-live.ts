import { ok, skipped, type Fact, type Problem } from "../../facts/fact.js";
import {
  parseIptablesS,
  parseNftRuleset,
  parseSsListen,
  type LiveFirewallFact,
  type OwnedSocket,
} from "../../facts/firewall-live.js";
import type { FactContext } from "../context.js";
import { HostError } from "../errors.js";
import type { Host } from "../host.js";
import { gather } from "./guard.js";

/**
 * The kernel's network state belongs to the machine clawguard runs on, not to a mounted image:
 * a chroot shares the host's network namespace, so `iptables` or `ss` run there would describe
 * the wrong system. Live state is read only when auditing "/" as root.
 */
export function liveSkipReason(host: Host): string | null {
  if (host.root !== "/") return `the live network state belongs to this machine, not to ${host.root}`;
  if (!host.isRoot) return "reading the live firewall and socket owners needs root (run with sudo)";
  return null;
}

export function gatherSocketOwners(ctx: FactContext): Promise<Fact<OwnedSocket[]>> {
  return gather("ss -Hltnp", async () => {
    const why = liveSkipReason(ctx.host);
    if (why) return skipped(why);
    const r = await ctx.host.run("ss", ["-Hltnp"]);
    if (r.code !== 0)
      throw new HostError({ kind: "io", source: "ss -Hltnp", message: r.stderr.trim() || `exit ${r.code}` });
    return ok(parseSsListen(r.stdout), ["ss -Hltnp"]);
  });
}

/** The kernel's live rules (iptables -S and ip6tables -S, else nft list ruleset): the truth ufw only saves. */
export function gatherLiveFirewall(ctx: FactContext): Promise<Fact<LiveFirewallFact>> {
  return gather("iptables -S", async () => {
    const why = liveSkipReason(ctx.host);
    if (why) return skipped(why);
    const fact: LiveFirewallFact = {};
    const sources: string[] = [];
    const problems: Problem[] = [];
    for (const [cmd, key] of [
      ["iptables", "v4"],
      ["ip6tables", "v6"],
    ] as const) {
      const source = `${cmd} -S`;
      try {
        const r = await ctx.host.run(cmd, ["-S"]);
        if (r.code !== 0)
          throw new HostError({ kind: "io", source, message: r.stderr.trim() || `exit ${r.code}` });
        fact[key] = parseIptablesS(r.stdout, source);
        sources.push(source);
      } catch (err) {
        if (!(err instanceof HostError)) throw err;
        problems.push(err.problem);
      }
    }
    // A host with nft but no iptables tools: read the same tables through nft.
    if (!fact.v4 || !fact.v6) {
      try {
        const r = await ctx.host.run("nft", ["list", "ruleset"]);
        if (r.code === 0) {
          const nft = parseNftRuleset(r.stdout);
          fact.v4 ??= nft.v4;
          fact.v6 ??= nft.v6;
          sources.push("nft list ruleset");
          return ok(fact, sources, []);
        }
      } catch (err) {
        if (!(err instanceof HostError)) throw err;
      }
    }
    if (sources.length === 0) return { status: "error", problems };
    return ok(fact, sources, problems);
  });
}
