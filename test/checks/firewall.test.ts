import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { gatherFacts, runAudit } from "../../src/audit/audit.js";
import { checkFirewall, type FirewallFacts } from "../../src/checks/firewall.js";
import { FactContext } from "../../src/host/context.js";
import { ok } from "../../src/facts/fact.js";
import { parseIptablesS } from "../../src/facts/firewall-live.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";

describe("firewall layer", () => {
  it("flags a disabled ufw that would lock out sshd, opens the gateway port and leaves IPv6 open", async () => {
    const { report } = await auditFixture("firewall-fail", ["firewall"]);
    expect(one(report.findings, "firewall.installed").status).toBe("pass");
    expect(one(report.findings, "firewall.enabled").status).toBe("fail");
    expect(one(report.findings, "firewall.enabled").remediation).toBe("ufw allow 2200/tcp && ufw enable");
    expect(one(report.findings, "firewall.default_incoming").status).toBe("pass");
    const lockout = one(report.findings, "firewall.ssh_allowed");
    expect(lockout.status).toBe("fail");
    expect(lockout.severity).toBe("critical");
    expect(lockout.detail).toBe("Lockout risk: `ufw enable` would block sshd's port 2200");
    expect(lockout.remediation).toMatch(/^ufw allow 2200\/tcp/);
    const gw = one(report.findings, "firewall.gateway_port_closed");
    expect(gw.status).toBe("fail");
    expect(gw.evidence.source).toBe("/etc/ufw/user.rules line 26");
    const ports = one(report.findings, "firewall.allowed_ports");
    expect(ports.status).toBe("fail");
    expect(ports.detail).toContain("18789, 8000, 8001");
    expect(one(report.findings, "firewall.ipv6").status).toBe("fail");
    // Not root on "/": the kernel's rules are not this fixture's, so they are not read.
    const live = one(report.findings, "firewall.live_ruleset");
    expect(live.status).toBe("skip");
    expect(live.evidence.excerpt).toContain("not to");
    const docker = one(report.findings, "firewall.docker_bypass");
    expect(docker.status).toBe("warn");
    expect(docker.evidence.excerpt).toContain("package docker.io");
  });

  it("passes ufw enabled with default deny, limit on sshd's 2222, 80,443, both families", async () => {
    const { report } = await auditFixture("firewall-pass", ["firewall"]);
    for (const id of [
      "firewall.installed",
      "firewall.enabled",
      "firewall.default_incoming",
      "firewall.allowed_ports",
      "firewall.ssh_allowed",
      "firewall.gateway_port_closed",
      "firewall.ipv6",
      "firewall.docker_bypass",
    ]) {
      expect([id, one(report.findings, id).status]).toEqual([id, "pass"]);
    }
    expect(one(report.findings, "firewall.ssh_allowed").evidence.excerpt).toContain(
      "user.rules line 20: limit tcp 2222",
    );
  });

  it("finds an IPv6-only allow rule and an allow-everything rule", async () => {
    const root = loadFixture("firewall-pass");
    const six = path.join(root, "etc/ufw/user6.rules");
    writeFileSync(
      six,
      readFileSync(six, "utf8").replace(
        "### END RULES ###",
        "### tuple ### allow any any ::/0 any ::/0 in\n-A ufw6-user-input -j ACCEPT\n\n### END RULES ###",
      ),
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["firewall"] });
    expect(one(report.findings, "firewall.ipv6").status).toBe("fail");
    expect(one(report.findings, "firewall.ipv6").evidence.excerpt).toContain("only in /etc/ufw/user6.rules");
    expect(one(report.findings, "firewall.default_incoming").detail).toContain("every port");
    expect(one(report.findings, "firewall.gateway_port_closed").status).toBe("fail");
  });

  it("reports a binary user.rules as an error naming the file and line, and checks the rest", async () => {
    const root = loadFixture("firewall-pass");
    writeFileSync(
      path.join(root, "etc/ufw/user.rules"),
      Buffer.concat([
        Buffer.from("*filter\n:ufw-user-input - [0:0]\n"),
        Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]),
      ]),
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["firewall", "ssh"] });
    for (const id of ["firewall.allowed_ports", "firewall.ssh_allowed", "firewall.gateway_port_closed"]) {
      const f = one(report.findings, id);
      expect(f.status).toBe("error");
      expect(f.evidence.source).toBe("/etc/ufw/user.rules:3");
      expect(f.evidence.excerpt).toBe("binary data where ufw saves its rules as text");
    }
    expect(one(report.findings, "firewall.enabled").status).toBe("pass");
    expect(one(report.findings, "firewall.default_incoming").status).toBe("pass");
    expect(one(report.findings, "ssh.root_login").status).toBe("pass");
  });

  it("still checks ufw's files when dpkg's status cannot be read", async () => {
    const root = loadFixture("firewall-pass");
    rmSync(path.join(root, "var/lib/dpkg/status"));
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["firewall"] });
    const installed = one(report.findings, "firewall.installed");
    expect(installed.status).toBe("error");
    expect(installed.evidence.source).toBe("/var/lib/dpkg/status");
    expect(one(report.findings, "firewall.ssh_allowed").status).toBe("pass");
  });

  it("reports a garbage line in user.rules with its line number", async () => {
    const root = loadFixture("firewall-pass");
    const p = path.join(root, "etc/ufw/user.rules");
    writeFileSync(
      p,
      readFileSync(p, "utf8").replace(
        "### END RULES ###",
        "allow 22 from anywhere please\n### END RULES ###",
      ),
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["firewall"] });
    const f = one(report.findings, "firewall.ssh_allowed");
    expect(f.status).toBe("error");
    expect(f.evidence.source).toMatch(/^\/etc\/ufw\/user\.rules:\d+$/);
    expect(f.evidence.excerpt).toMatch(/^not an iptables-restore or ufw tuple line/);
  });
});

// What iptables-nft prints on Debian 12 with ufw enabled (trimmed): ufw names its IPv6 chains ufw6-*.
const V4 =
  "-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N ufw-before-input\n-N ufw-user-input\n-A INPUT -j ufw-before-input\n-A ufw-user-input -p tcp -m tcp --dport 2222 -j ACCEPT\n";
const V6 =
  "-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N ufw6-before-input\n-N ufw6-user-input\n-A INPUT -j ufw6-before-input\n";
const DOCKER =
  "-N DOCKER\n-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 8080 -j ACCEPT\n";

describe("firewall layer against the live ruleset", () => {
  async function factsWithLive(v4: string, v6: string): Promise<FirewallFacts> {
    const root = loadFixture("firewall-pass");
    const { facts } = await gatherFacts(new FactContext(new LocalHost(root, { isRoot: false })), [
      "firewall",
    ]);
    return {
      ...(facts as FirewallFacts),
      firewallLive: ok({ v4: parseIptablesS(v4, "iptables -S"), v6: parseIptablesS(v6, "ip6tables -S") }, [
        "iptables -S",
        "ip6tables -S",
      ]),
    };
  }

  it("passes when ufw's chains are loaded in both families", async () => {
    const f = checkFirewall(await factsWithLive(V4, V6));
    expect(one(f, "firewall.live_ruleset").status).toBe("pass");
    expect(one(f, "firewall.live_ruleset").evidence.excerpt).toContain(
      "ip6tables -S: INPUT DROP, 2 ufw chains",
    );
  });

  it("fails when ufw is enabled but the kernel accepts everything", async () => {
    const f = checkFirewall(
      await factsWithLive("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n", V6),
    );
    const live = one(f, "firewall.live_ruleset");
    expect(live.status).toBe("fail");
    expect(live.evidence.excerpt).toContain("iptables -S: no ufw user-input chain");
    expect(live.evidence.excerpt).toContain('-P INPUT ACCEPT while ufw saves DEFAULT_INPUT_POLICY="DROP"');
  });

  it("fails a port that Docker publishes through its own chain", async () => {
    const facts = await factsWithLive(V4 + DOCKER, V6);
    const f = checkFirewall({
      ...facts,
      docker: ok({ installedBy: "package docker.io", iptables: true, iptablesSource: "Docker default" }, []),
    });
    const d = one(f, "firewall.docker_bypass");
    expect(d.status).toBe("fail");
    expect(d.evidence.excerpt).toContain("--dport 8080 -j ACCEPT");
    const off = checkFirewall({
      ...facts,
      docker: ok(
        {
          installedBy: "package docker.io",
          iptables: false,
          iptablesSource: '/etc/docker/daemon.json "iptables": false',
        },
        [],
      ),
    });
    expect(one(off, "firewall.docker_bypass").status).toBe("pass");
  });
});
