import { DOCKER_DAEMON_JSON, type DockerFact } from "../facts/docker.js";
import type { Fact } from "../facts/fact.js";
import type { IptablesRuleset, LiveFirewallFact, OwnedSocket } from "../facts/firewall-live.js";
import { entry } from "../facts/record.js";
import type { UfwFact } from "../facts/ufw.js";
import { catalog, need } from "./catalog.js";
import type { Finding } from "./finding.js";

/** The firewall layer's checks of the running kernel, next to those of ufw's saved state. */
const C = catalog("firewall", {
  live_ruleset: {
    severity: "high",
    title: "The kernel's live rules match ufw's saved state",
    remediation: "ufw reload   # or ufw enable when ufw is meant to be on",
    fixable: true,
  },
  docker_bypass: {
    severity: "high",
    title: "No Docker-published port bypasses the firewall",
    remediation:
      'publish container ports on 127.0.0.1 only (docker run -p 127.0.0.1:8080:8080), or set {"iptables": false} in /etc/docker/daemon.json and systemctl restart docker',
    fixable: false,
  },
});

function liveFamily(rs: IptablesRuleset | undefined, enabled: boolean, policy: string | undefined): string[] {
  if (!rs) return [];
  const bad: string[] = [];
  // ufw names its IPv6 chains ufw6-*.
  const loaded = rs.chains.includes("ufw-user-input") || rs.chains.includes("ufw6-user-input");
  if (enabled && !loaded) bad.push(`${rs.command}: no ufw user-input chain, ufw's rules are not loaded`);
  if (!enabled && loaded) bad.push(`${rs.command}: ufw chains are loaded although ENABLED=no`);
  const p = rs.policies.INPUT;
  if (enabled && policy && /^(DROP|REJECT)$/i.test(policy) && p === "ACCEPT")
    bad.push(`${rs.command}: -P INPUT ACCEPT while ufw saves DEFAULT_INPUT_POLICY="${policy}"`);
  return bad;
}

/** Whether the kernel runs what ufw saved: its chains loaded when enabled, its policy applied. */
export function checkLive(live: Fact<LiveFirewallFact>, u: UfwFact | null): Finding {
  if (live.status === "skip") return C.live_ruleset.skip(live.reason, "iptables -S");
  if (live.status === "error") return C.live_ruleset.error(live.problems[0]!);
  if (!u) return C.live_ruleset.skip("ufw is not installed: no saved state to compare", "iptables -S");
  const enabled = entry(u.conf, "ENABLED")?.value.toLowerCase() === "yes";
  const policy = entry(u.defaults, "DEFAULT_INPUT_POLICY")?.value;
  const v6on = entry(u.defaults, "IPV6")?.value.toLowerCase() === "yes";
  const bad = [
    ...liveFamily(live.value.v4, enabled, policy),
    ...(v6on ? liveFamily(live.value.v6, enabled, policy) : []),
  ];
  const excerpt = bad.length
    ? bad.join("\n")
    : `ENABLED=${enabled ? "yes" : "no"}; ${[live.value.v4, live.value.v6]
        .filter((r): r is IptablesRuleset => !!r)
        .map(
          (r) =>
            `${r.command}: INPUT ${r.policies.INPUT ?? "?"}, ${r.chains.filter((c) => /^ufw6?-/.test(c)).length} ufw chains`,
        )
        .join("; ")}`;
  return C.live_ruleset.verdict(bad.length === 0, { source: live.sources.join(", "), excerpt });
}

function dockerPublished(live: Fact<LiveFirewallFact>, owners: Fact<OwnedSocket[]>): string[] {
  const out: string[] = [];
  if (live.status === "ok")
    for (const rs of [live.value.v4, live.value.v6]) {
      for (const r of rs?.rules ?? []) {
        const m = /^-A DOCKER .*--dport (\d+).*-j ACCEPT/.exec(r);
        if (m) out.push(`${rs!.command}: ${r}`);
      }
    }
  if (owners.status === "ok")
    for (const s of owners.value) {
      if (s.processes.includes("docker-proxy") && !/^(127\.|::1$)/.test(s.address))
        out.push(`ss -Hltnp: docker-proxy on ${s.address}:${s.port}`);
    }
  return out;
}

/** Docker writes its own iptables rules, which accept published ports before ufw's run. */
export function checkDocker(
  docker: Fact<DockerFact>,
  live: Fact<LiveFirewallFact>,
  owners: Fact<OwnedSocket[]>,
): Finding {
  const d = need(docker, C.docker_bypass, []);
  if (!d)
    return docker.status === "error"
      ? C.docker_bypass.error(docker.problems[0]!)
      : C.docker_bypass.skip("Docker facts unavailable");
  if (!d.installedBy)
    return C.docker_bypass.pass({ source: "/var/lib/dpkg/status", excerpt: "Docker is not installed" });
  if (!d.iptables) return C.docker_bypass.pass({ source: DOCKER_DAEMON_JSON, excerpt: d.iptablesSource });
  const published = dockerPublished(live, owners);
  if (published.length > 0)
    return C.docker_bypass.fail(
      { source: published[0]!.split(":")[0]!, excerpt: published.join("\n") },
      { detail: "Docker publishes ports past ufw: its DOCKER chain accepts them before ufw's rules run" },
    );
  const seen =
    live.status === "ok"
      ? "no published ports in the live DOCKER chain"
      : "the live DOCKER chain was not readable (run as root)";
  return C.docker_bypass.warn(
    { source: DOCKER_DAEMON_JSON, excerpt: `${d.installedBy}; ${d.iptablesSource}; ${seen}` },
    { detail: "Docker manages iptables: any port a container publishes will bypass ufw", severity: "medium" },
  );
}
