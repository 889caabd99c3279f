import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost } from "../../src/host/host.js";
import { renderSshCaDropIn } from "../../src/render/sshd-ca.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";

describe("ssh layer", () => {
  it("fails root login and passwords, following Include where the first value wins", async () => {
    const { report } = await auditFixture("ssh-fail", ["ssh"]);
    const root = one(report.findings, "ssh.root_login");
    expect(root.status).toBe("fail");
    expect(root.evidence.source).toBe("/etc/ssh/sshd_config line 4");
    const pw = one(report.findings, "ssh.password_auth");
    expect(pw.status).toBe("fail");
    // The cloud-init drop-in is read first (Include is on line 2), so its "yes" wins over line 5.
    expect(pw.evidence.source).toBe("/etc/ssh/sshd_config.d/50-cloud-init.conf line 1");
    // No login user has a key: the remediation says to add one before turning passwords off.
    expect(pw.remediation).toMatch(/^First give some login user a key.*root, deploy/);
    expect(one(report.findings, "ssh.authorized_keys").status).toBe("warn");
    expect(one(report.findings, "ssh.x11_forwarding").status).toBe("fail");
    expect(one(report.findings, "ssh.empty_passwords").status).toBe("pass");
    expect(one(report.findings, "ssh.tcp_forwarding").status).toBe("warn");
    expect(one(report.findings, "ssh.agent_forwarding").status).toBe("warn");
    const match = one(report.findings, "ssh.match_overrides");
    expect(match.status).toBe("warn");
    expect(match.evidence.excerpt).toContain("Match User deploy: passwordauthentication yes (line 14)");
    const ports = one(report.findings, "ssh.ports");
    expect(ports.status).toBe("pass");
    expect(ports.evidence.excerpt).toContain("22 (default)");
  });

  it("passes a hardened drop-in on port 2222 with a key for admin", async () => {
    const { report } = await auditFixture("ssh-pass", ["ssh"]);
    for (const id of [
      "ssh.root_login",
      "ssh.password_auth",
      "ssh.empty_passwords",
      "ssh.tcp_forwarding",
      "ssh.agent_forwarding",
      "ssh.x11_forwarding",
      "ssh.match_overrides",
      "ssh.ports",
      "ssh.authorized_keys",
    ]) {
      expect([id, one(report.findings, id).status]).toEqual([id, "pass"]);
    }
    expect(one(report.findings, "ssh.root_login").evidence.excerpt).toBe("PermitRootLogin prohibit-password");
    expect(one(report.findings, "ssh.ports").evidence.excerpt).toContain(
      "2222 (/etc/ssh/sshd_config.d/10-clawguard.conf line 1)",
    );
    expect(one(report.findings, "ssh.authorized_keys").evidence).toEqual({
      source: "/home/admin/.ssh/authorized_keys",
      excerpt: "admin: 1 key(s)",
    });
  });

  it("skips the layer when sshd is not installed", async () => {
    const { report } = await auditFixture("tmp-pass", ["ssh"]);
    expect(report.findings).toHaveLength(1);
    expect(report.findings[0]!.status).toBe("skip");
    expect(report.findings[0]!.evidence.excerpt).toContain("sshd is not installed");
  });
});

describe("ssh layer: the fleet's SSH CA", () => {
  const audit = async (dropIn: string | null) => {
    const root = loadFixture("ssh-pass");
    if (dropIn !== null) writeFileSync(path.join(root, "etc/ssh/sshd_config.d/05-ca.conf"), dropIn);
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["ssh"] });
    return [one(report.findings, "ssh.ca_principals"), one(report.findings, "ssh.ca_revocation")] as const;
  };

  it("passes a server that trusts no CA", async () => {
    const [p, r] = await audit(null);
    expect([p.status, r.status, p.evidence.excerpt]).toEqual(["pass", "pass", "TrustedUserCAKeys none"]);
  });

  it("fails a CA trusted alone: no principals file, no revocation list", async () => {
    const [p, r] = await audit("TrustedUserCAKeys /etc/ssh/ca.pub\n");
    expect([p.status, r.status]).toEqual(["fail", "fail"]);
    expect(p.detail).toMatch(/no principals file/);
    expect(p.evidence.source).toBe("/etc/ssh/sshd_config.d/05-ca.conf line 1");
    expect(r.detail).toMatch(/no revocation list/);
  });

  it("passes the CA as harden --ssh-ca installs it", async () => {
    const [p, r] = await audit(renderSshCaDropIn());
    expect([p.status, r.status]).toEqual(["pass", "pass"]);
    expect(p.evidence.excerpt).toBe("AuthorizedPrincipalsFile /etc/ssh/clawguard/principals");
    expect(r.evidence.excerpt).toBe("RevokedKeys /etc/ssh/clawguard/revoked.krl");
  });
});
