import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";

// The classic hardening guide followed literally on Debian 12: sshd moved to 2222, ufw enabled
// with 22/80/443, fail2ban's sshd jail on `port = ssh` reading /var/log/auth.log (which Debian
// 12 does not write, having no rsyslog).
describe("the classic guide on Debian 12", () => {
  it("flags the lockout: ufw is enabled but does not allow sshd's real port 2222", async () => {
    const { report } = await auditFixture("classic-guide", ["firewall", "ssh"]);
    const lockout = one(report.findings, "firewall.ssh_allowed");
    expect(lockout.status).toBe("fail");
    expect(lockout.severity).toBe("critical");
    expect(lockout.detail).toBe("Lockout: ufw is enabled but does not allow sshd's port 2222");
    expect(lockout.evidence.excerpt).toContain("2222 (/etc/ssh/sshd_config line 4)");
    expect(lockout.remediation).toMatch(/^ufw allow 2222\/tcp/);
    // 22 is open for nobody's benefit: sshd does not listen there.
    const ports = one(report.findings, "firewall.allowed_ports");
    expect(ports.status).toBe("fail");
    expect(ports.detail).toContain("port 22 in");
    expect(one(report.findings, "firewall.enabled").status).toBe("pass");
    expect(one(report.findings, "firewall.default_incoming").status).toBe("pass");
    expect(one(report.findings, "firewall.gateway_port_closed").status).toBe("pass");
    expect(one(report.findings, "firewall.ipv6").status).toBe("pass");
    // sshd really listens on 2222 (v4 and v6), so the configured port is the live one.
    expect(one(report.findings, "ssh.ports").status).toBe("pass");
    expect(one(report.findings, "ssh.root_login").status).toBe("pass");
    expect(one(report.findings, "ssh.password_auth").status).toBe("pass");
  });

  it("flags the sshd jail that cannot start and watches the wrong port", async () => {
    const { report } = await auditFixture("classic-guide", ["fail2ban"]);
    expect(one(report.findings, "fail2ban.sshd_jail").status).toBe("pass");
    expect(one(report.findings, "fail2ban.enabled").status).toBe("pass");
    const backend = one(report.findings, "fail2ban.backend");
    expect(backend.status).toBe("fail");
    expect(backend.severity).toBe("critical");
    expect(backend.evidence.source).toBe("/etc/fail2ban/jail.local line 4");
    expect(backend.detail).toContain("/var/log/auth.log is missing");
    expect(backend.remediation).toContain("port = 2222");
    const port = one(report.findings, "fail2ban.port");
    expect(port.status).toBe("fail");
    expect(port.evidence.excerpt).toContain("port = ssh = 22");
    expect(port.detail).toContain("sshd listens on 2222");
    // Debian's DEFAULT bantime of 10m is too short.
    expect(one(report.findings, "fail2ban.bantime").status).toBe("fail");
  });

  it("fixes the jail's port with the printed command: jail.d/*.local wins over jail.local", async () => {
    const root = loadFixture("classic-guide");
    const host = new LocalHost(root, { isRoot: false });
    let report = await runAudit(host, { layers: ["fail2ban"] });
    const fix = one(report.findings, "fail2ban.port").remediation;
    expect(fix).toBe(
      "printf '[sshd]\\nport = 2222\\n' > /etc/fail2ban/jail.d/clawguard-port.local && systemctl restart fail2ban",
    );
    // Run the file-writing half of the command for real, aimed at the fixture instead of /.
    const write = fix.split(" && ")[0]!.replace(" > /etc/", ` > ${root}/etc/`);
    execFileSync("sh", ["-c", write]);
    report = await runAudit(host, { layers: ["fail2ban"] });
    const port = one(report.findings, "fail2ban.port");
    expect(port.status).toBe("pass");
    expect(port.evidence.source).toBe("/etc/fail2ban/jail.d/clawguard-port.local line 2");
  });

  it("completes the whole audit when user.rules is binary, naming the file in an error", async () => {
    const root = loadFixture("classic-guide");
    writeFileSync(path.join(root, "etc/ufw/user.rules"), Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x0a]));
    const report = await runAudit(new LocalHost(root, { isRoot: false }));
    const err = one(report.findings, "firewall.ssh_allowed");
    expect(err.status).toBe("error");
    expect(err.evidence.source).toBe("/etc/ufw/user.rules:1");
    expect(err.evidence.excerpt).toBe("binary data where ufw saves its rules as text");
    expect(report.findings.filter((f) => f.id.endsWith(".internal_error"))).toEqual([]);
    expect(one(report.findings, "fail2ban.backend").status).toBe("fail");
    expect(one(report.findings, "firewall.ipv6").status).toBe("warn");
    expect(one(report.findings, "firewall.enabled").status).toBe("pass");
    for (const layer of ["firewall", "fail2ban", "ssh", "tmp"]) expect(report.layers).toContain(layer);
  });
});
