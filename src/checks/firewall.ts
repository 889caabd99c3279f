import { describeProblem, type Fact, type Problem } from "../facts/fact.js";
import type { Facts } from "../facts/keys.js";
import { DEFAULT_GATEWAY_PORT, type OpenClawFact } from "../facts/openclaw.js";
import { installedVersion, isInstalled } from "../facts/packages.js";
import { entry } from "../facts/record.js";
import type { SshdFact } from "../facts/sshd.js";
import {
  portFieldCovers,
  portFieldPorts,
  UFW_CONF,
  UFW_DEFAULTS,
  UFW_USER6_RULES,
  UFW_USER_RULES,
  type UfwFact,
  type UfwRule,
} from "../facts/ufw.js";
import { catalog, need } from "./catalog.js";
import { checkDocker, checkLive } from "./firewall-live.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";

const WEB_PORTS = [80, 443];

const C = catalog("firewall", {
  installed: {
    severity: "high",
    title: "ufw is installed",
    remediation: "apt-get install -y ufw",
    fixable: true,
  },
  enabled: {
    severity: "high",
    title: "ufw is enabled",
    remediation: "ufw allow 22/tcp && ufw enable   # allow sshd's real port first",
    fixable: true,
  },
  default_incoming: {
    severity: "high",
    title: "Incoming traffic is denied unless a rule allows it",
    remediation: "ufw default deny incoming",
    fixable: true,
  },
  allowed_ports: {
    severity: "medium",
    title: "Only SSH, 80 and 443 are allowed in",
    remediation: "ufw status numbered, then ufw delete NUMBER for each rule the evidence names",
    fixable: true,
  },
  ssh_allowed: {
    severity: "critical",
    title: "The firewall allows sshd's real port, so enabling it cannot lock you out",
    remediation: "ufw allow 22/tcp",
    fixable: true,
  },
  gateway_port_closed: {
    severity: "critical",
    title: "The OpenClaw gateway port is not allowed in (ssh -L reaches it instead)",
    remediation: "ufw status numbered, then ufw delete NUMBER for the rule allowing the gateway port",
    fixable: true,
  },
  ipv6: {
    severity: "high",
    title: "The firewall covers IPv6 with the same rules as IPv4",
    remediation: "sed -i 's/^IPV6=.*/IPV6=yes/' /etc/default/ufw && ufw reload",
    fixable: true,
  },
});

export type FirewallFacts = Pick<
  Facts,
  "packages" | "ufw" | "sshd" | "openclaw" | "firewallLive" | "socketOwners" | "docker"
>;

/** Rules that let traffic in to this host: allow or limit, inbound, not a forwarding rule. */
function inbound(rules: UfwRule[]): UfwRule[] {
  return rules.filter(
    (r) => (r.action === "allow" || r.action === "limit") && r.direction === "in" && !r.route,
  );
}

function allowsTcp(rules: UfwRule[], port: number): UfwRule | undefined {
  return inbound(rules).find(
    (r) => (r.proto === "tcp" || r.proto === "any") && portFieldCovers(r.dport, port),
  );
}

function ruleRef(r: UfwRule): string {
  // The finding's source names the file's full path; the rule says which of the files and where.
  return `${r.source.slice(r.source.lastIndexOf("/") + 1)} line ${r.line}: ${r.text}`;
}

function problemFor(problems: Problem[], path: string): Problem | undefined {
  return problems.find((p) => p.source === path);
}

/** The gateway ports of every install found, or OpenClaw's default when none was. */
function gatewayPorts(openclaw: Fact<OpenClawFact>): Array<{ port: number; source: string }> {
  if (openclaw.status === "ok" && openclaw.value.installs.length > 0)
    return openclaw.value.installs.map((i) => ({
      port: i.port,
      source: `${i.configPath} (${i.portSource})`,
    }));
  return [{ port: DEFAULT_GATEWAY_PORT, source: "OpenClaw default port" }];
}

function describePorts(ps: Array<number | [number, number]>): string {
  return ps.map((p) => (typeof p === "number" ? String(p) : `${p[0]}-${p[1]}`)).join(", ");
}

export function checkFirewall(f: FirewallFacts): Finding[] {
  const out: Finding[] = [];
  const pkgs = need(f.packages, C.installed, out);
  if (pkgs) {
    const v = installedVersion(pkgs, "ufw");
    out.push(
      C.installed.verdict(v !== undefined, {
        source: "/var/lib/dpkg/status",
        excerpt: v !== undefined ? `ufw ${v} install ok installed` : "package ufw is not installed",
      }),
    );
  }
  const u = need(f.ufw, C.enabled, out);
  // Without dpkg's status, ufw's own config file is the sign that it is installed.
  const installed = pkgs ? isInstalled(pkgs, "ufw") : Object.keys(u?.conf ?? {}).length > 0;
  if (u && installed) out.push(...checkUfw(f, u, f.ufw.status === "ok" ? f.ufw.problems : []));
  else if (pkgs && !installed) {
    for (const m of [
      C.enabled,
      C.default_incoming,
      C.allowed_ports,
      C.ssh_allowed,
      C.gateway_port_closed,
      C.ipv6,
    ])
      out.push(m.skip("ufw is not installed", "/var/lib/dpkg/status"));
  }
  out.push(checkLive(f.firewallLive, installed ? u : null));
  out.push(checkDocker(f.docker, f.firewallLive, f.socketOwners));
  return out;
}

function checkUfw(f: FirewallFacts, u: UfwFact, problems: Problem[]): Finding[] {
  const out: Finding[] = [];
  const confProblem = problemFor(problems, UFW_CONF);
  const enabledSetting = entry(u.conf, "ENABLED");
  const enabled = enabledSetting?.value.toLowerCase() === "yes";
  if (confProblem) out.push(C.enabled.error(confProblem));
  else
    out.push(
      C.enabled.verdict(
        enabled,
        enabledSetting
          ? { source: `${UFW_CONF} line ${enabledSetting.line}`, excerpt: `ENABLED=${enabledSetting.value}` }
          : { source: UFW_CONF, excerpt: "no ENABLED= line (ufw treats it as no)" },
        {
          // Without sshd's real ports, keep the catalog's advice to allow SSH first.
          remediation:
            f.sshd.status === "ok" && f.sshd.value.ports.length > 0
              ? `${f.sshd.value.ports.map((p) => `ufw allow ${p}/tcp && `).join("")}ufw enable`
              : undefined,
        },
      ),
    );

  const v4Problem = problemFor(problems, UFW_USER_RULES);
  const v6Problem = problemFor(problems, UFW_USER6_RULES);
  const v4 = u.v4?.rules ?? [];
  const v6 = u.v6?.rules ?? [];

  const defProblem = problemFor(problems, UFW_DEFAULTS);
  const input = entry(u.defaults, "DEFAULT_INPUT_POLICY");
  const denies = input ? /^(DROP|REJECT)$/i.test(input.value) : false;
  const openAll = inbound([...v4, ...v6]).find(
    (r) => r.dport === "any" && r.proto === "any" && /^(0\.0\.0\.0\/0|::\/0)$/.test(r.src) && !r.iface,
  );
  if (defProblem) out.push(C.default_incoming.error(defProblem));
  else if (!denies)
    out.push(
      C.default_incoming.fail({
        source: input ? `${UFW_DEFAULTS} line ${input.line}` : UFW_DEFAULTS,
        excerpt: input
          ? `DEFAULT_INPUT_POLICY="${input.value}"`
          : "no DEFAULT_INPUT_POLICY (ufw would accept)",
      }),
    );
  else if (openAll)
    out.push(
      C.default_incoming.fail(
        { source: `${openAll.source} line ${openAll.line}`, excerpt: openAll.text },
        {
          detail: "A rule allows every port from anywhere, undoing the default deny",
          remediation: "ufw status numbered, then ufw delete NUMBER for the rule allowing all ports",
        },
      ),
    );
  else
    out.push(
      C.default_incoming.pass({
        source: `${UFW_DEFAULTS} line ${input!.line}`,
        excerpt: `DEFAULT_INPUT_POLICY="${input!.value}"`,
      }),
    );

  const sshPorts = f.sshd.status === "ok" ? f.sshd.value.ports : [];
  const gw = gatewayPorts(f.openclaw);
  if (v4Problem) {
    out.push(
      C.allowed_ports.error(v4Problem),
      C.ssh_allowed.error(v4Problem),
      C.gateway_port_closed.error(v4Problem),
    );
  } else {
    out.push(checkAllowedPorts([...v4, ...(v6Problem ? [] : v6)], sshPorts));
    out.push(checkSshAllowed(f.sshd, v4, v6Problem ? undefined : v6, enabled, denies));
    const open = gw.flatMap((g) => {
      const r = inbound([...v4, ...v6]).find((x) => portFieldCovers(x.dport, g.port) && x.proto !== "udp");
      return r ? [{ g, r }] : [];
    });
    out.push(
      open.length > 0
        ? C.gateway_port_closed.fail(
            {
              source: `${open[0]!.r.source} line ${open[0]!.r.line}`,
              excerpt: `${open[0]!.r.text} (gateway port ${open[0]!.g.port} from ${open[0]!.g.source})`,
            },
            { detail: `The firewall allows the OpenClaw gateway port ${open[0]!.g.port} in` },
          )
        : C.gateway_port_closed.pass({
            source: UFW_USER_RULES,
            excerpt: `no rule allows ${gw.map((g) => `${g.port} (${g.source})`).join(", ")}`,
          }),
    );
  }

  const ipv6 = entry(u.defaults, "IPV6");
  if (defProblem) out.push(C.ipv6.error(defProblem));
  else if (v6Problem) out.push(C.ipv6.error(v6Problem));
  else if (ipv6?.value.toLowerCase() !== "yes")
    out.push(
      C.ipv6.fail(
        {
          source: ipv6 ? `${UFW_DEFAULTS} line ${ipv6.line}` : UFW_DEFAULTS,
          excerpt: ipv6 ? `IPV6=${ipv6.value}` : "no IPV6= line",
        },
        { detail: "ufw leaves IPv6 unfiltered: every IPv6 port is open" },
      ),
    );
  else if (v4Problem)
    out.push(
      C.ipv6.warn(
        { source: `${UFW_DEFAULTS} line ${ipv6.line}`, excerpt: `IPV6=yes; ${describeProblem(v4Problem)}` },
        { detail: `ufw filters IPv6, but ${UFW_USER_RULES} could not be read to compare the two families` },
      ),
    );
  else out.push(checkV6Consistency(v4, v6));
  return out;
}

function checkAllowedPorts(rules: UfwRule[], sshPorts: number[]): Finding {
  const ok = new Set([...sshPorts, ...WEB_PORTS]);
  const extra: Array<{ r: UfwRule; ports: Array<number | [number, number]> }> = [];
  for (const r of inbound(rules)) {
    const ports = portFieldPorts(r.dport).filter((p) => typeof p !== "number" || !ok.has(p));
    if (ports.length > 0) extra.push({ r, ports });
  }
  const allowed = `allowed: SSH ${sshPorts.join(", ") || "(sshd not found)"}, ${WEB_PORTS.join(", ")}`;
  if (extra.length === 0)
    return C.allowed_ports.pass({
      source: UFW_USER_RULES,
      excerpt: `${inbound(rules).length} inbound rule(s), all within ${allowed}`,
    });
  const names = [...new Set(extra.flatMap((e) => e.ports).map((p) => describePorts([p])))];
  return C.allowed_ports.fail(
    {
      source: [...new Set(extra.map((e) => e.r.source))].join(", "),
      excerpt: extra.map((e) => ruleRef(e.r)).join("\n"),
    },
    {
      detail: `The firewall allows port${names.length > 1 ? "s" : ""} ${names.join(", ")} in, beyond SSH, 80 and 443`,
      // One `ufw delete` removes the rule from both families.
      remediation: `${[...new Set(extra.map((e) => `ufw delete ${e.r.action} ${e.r.dport}${e.r.proto === "any" ? "" : `/${e.r.proto}`}`))].join(" && ")}   # or ufw status numbered and delete by number`,
    },
  );
}

function checkSshAllowed(
  sshd: Fact<SshdFact>,
  v4: UfwRule[],
  v6: UfwRule[] | undefined,
  enabled: boolean,
  denies: boolean,
): Finding {
  if (sshd.status !== "ok")
    return C.ssh_allowed.skip(
      sshd.status === "skip" ? sshd.reason : "sshd's settings could not be read",
      "sshd",
    );
  const s = sshd.value;
  const missing4 = s.ports.filter((p) => !allowsTcp(v4, p));
  const missing6 = v6 ? s.ports.filter((p) => !allowsTcp(v6, p)) : [];
  const portsFrom = [
    ...new Set([
      ...s.configured.map((p) => `${p.port} (${p.source})`),
      ...(s.liveOwned ?? []).map((p) => `${p.port} (${p.source})`),
    ]),
  ].join(", ");
  const allowCmd = (ps: number[]) => ps.map((p) => `ufw allow ${p}/tcp`).join(" && ");
  if (missing4.length === 0 && missing6.length === 0)
    return C.ssh_allowed.pass({
      source: UFW_USER_RULES,
      excerpt: s.ports.map((p) => ruleRef(allowsTcp(v4, p)!)).join("\n"),
    });
  const evidence = {
    source: UFW_USER_RULES,
    excerpt: `sshd listens on ${portsFrom}; no inbound allow rule for ${[...new Set([...missing4, ...missing6])].join(", ")}${missing4.length === 0 ? " over IPv6" : ""}; allowed: ${[...new Set(inbound([...v4, ...(v6 ?? [])]).map((r) => r.dport))].join(", ") || "nothing"}`,
  };
  if (missing4.length === 0)
    return C.ssh_allowed.warn(evidence, {
      detail: `The firewall does not allow sshd's port ${missing6.join(", ")} over IPv6`,
      severity: "medium",
      remediation: allowCmd(missing6),
    });
  if (!denies)
    return C.ssh_allowed.warn(evidence, {
      detail: `No rule allows sshd's port ${missing4.join(", ")}; only the accepting default policy lets SSH in`,
      remediation: allowCmd(missing4),
    });
  return C.ssh_allowed.fail(evidence, {
    detail: enabled
      ? `Lockout: ufw is enabled but does not allow sshd's port ${missing4.join(", ")}`
      : `Lockout risk: \`ufw enable\` would block sshd's port ${missing4.join(", ")}`,
    remediation: `${allowCmd(missing4)}   # before anything else, from the session you have now`,
  });
}

function key(r: UfwRule): string {
  return `${r.action} ${r.proto} ${r.dport} ${r.direction}${r.iface ? `_${r.iface}` : ""}${r.route ? " route" : ""}`;
}

function checkV6Consistency(v4: UfwRule[], v6: UfwRule[]): Finding {
  // Only rules open to every source appear in both files; address-bound rules are per family.
  const everywhere = (rs: UfwRule[], any: string) =>
    new Map(rs.filter((r) => r.src === any).map((r) => [key(r), r]));
  const a = everywhere(v4, "0.0.0.0/0");
  const b = everywhere(v6, "::/0");
  const only4 = [...a.keys()].filter((k) => !b.has(k));
  const only6 = [...b.keys()].filter((k) => !a.has(k));
  if (only4.length === 0 && only6.length === 0)
    return C.ipv6.pass({
      source: UFW_USER6_RULES,
      excerpt: `IPV6=yes; ${b.size} rule(s) matching ${UFW_USER_RULES}`,
    });
  const excerpt = [
    ...only4.map((k) => `only in ${UFW_USER_RULES}: ${a.get(k)!.text}`),
    ...only6.map((k) => `only in ${UFW_USER6_RULES}: ${b.get(k)!.text}`),
  ].join("\n");
  const opens6 = only6.some((k) => /^(allow|limit) /.test(k));
  const ev = { source: UFW_USER6_RULES, excerpt };
  const o = {
    title: opens6 ? "IPv6 allows ports that IPv4 does not" : "IPv6 rules differ from IPv4 rules",
    remediation:
      "ufw status numbered: add each rule without an address (ufw allow PORT/tcp) so ufw writes both families, and delete the stray ones",
  };
  return opens6 ? C.ipv6.fail(ev, o) : C.ipv6.warn(ev, { ...o, severity: "medium" });
}

export const firewallLayer = defineLayer({
  layer: "firewall",
  needs: ["packages", "ufw", "sshd", "openclaw", "firewallLive", "socketOwners", "docker"],
  check: checkFirewall,
});
