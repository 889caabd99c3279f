import { mkdirSync, writeFileSync } from "node:fs";
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
  /** The fixture with this drop-in and these files (path under the root: content). */
  const audit = async (dropIn: string | null, files: Record<string, string> = {}) => {
    const root = loadFixture("ssh-pass");
    if (dropIn !== null) writeFileSync(path.join(root, "etc/ssh/sshd_config.d/05-ca.conf"), dropIn);
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
      writeFileSync(path.join(root, p), text);
    }
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["ssh"] });
    return [
      one(report.findings, "ssh.ca_principals"),
      one(report.findings, "ssh.ca_revocation"),
      one(report.findings, "ssh.ca_root"),
    ] as const;
  };

  it("passes a server that trusts no CA", async () => {
    const [p, r] = await audit(null);
    expect([p.status, r.status, p.evidence.excerpt]).toEqual(["pass", "pass", "TrustedUserCAKeys none"]);
  });

  it("fails a CA trusted alone: no principals file, no revocation list, root open to it", async () => {
    const [p, r, root] = await audit("TrustedUserCAKeys /etc/ssh/ca.pub\n");
    expect([p.status, r.status, root.status]).toEqual(["fail", "fail", "fail"]);
    expect(root.detail).toMatch(/naming the principal root logs in as root/);
    expect(p.detail).toMatch(/no principals file/);
    expect(p.evidence.source).toBe("/etc/ssh/sshd_config.d/05-ca.conf line 1");
    expect(r.detail).toMatch(/no revocation list/);
  });

  it("passes the CA as harden --ssh-ca installs it: a principals file per account, none for root", async () => {
    const [p, r, root] = await audit(renderSshCaDropIn(), {
      "etc/ssh/clawguard/principals/admin": "agent-scout\nagent-scout:admin\n",
    });
    expect([p.status, r.status, root.status]).toEqual(["pass", "pass", "pass"]);
    expect(p.evidence.excerpt).toBe("AuthorizedPrincipalsFile /etc/ssh/clawguard/principals/%u");
    expect(r.evidence.excerpt).toBe("RevokedKeys /etc/ssh/clawguard/revoked.krl");
    expect(root.evidence).toEqual({
      source: "/etc/ssh/clawguard/principals/root",
      excerpt: "no principals for root; PermitRootLogin prohibit-password",
    });
  });

  it("reports a principals file for root, with the principals it lists", async () => {
    const [p, , root] = await audit(renderSshCaDropIn(), {
      "etc/ssh/clawguard/principals/root": "# listed on purpose\nagent-scout\nagent-scout:root\n",
    });
    expect(p.status).toBe("pass");
    expect(root.status).toBe("warn");
    expect(root.detail).toBe(
      "root takes certificates naming agent-scout, agent-scout:root (/etc/ssh/clawguard/principals/root)",
    );
    // Unless root cannot log in at all.
    const [, , closed] = await audit(`PermitRootLogin no\n${renderSshCaDropIn()}`, {
      "etc/ssh/clawguard/principals/root": "agent-scout\n",
    });
    expect([closed.status, closed.evidence.excerpt]).toEqual(["pass", "PermitRootLogin no"]);
  });

  it("warns of one principals file for every account, and fails root reading it", async () => {
    const old = renderSshCaDropIn().replace("principals/%u", "principals");
    const [p, r, root] = await audit(old, { "etc/ssh/clawguard/principals": "agent-scout\n" });
    expect([p.status, r.status, root.status]).toEqual(["warn", "pass", "fail"]);
    expect(p.detail).toMatch(/^One principals file \(\/etc\/ssh\/clawguard\/principals\) for every account/);
    expect(root.detail).toMatch(/every certificate for this server logs in as root/);
    expect(root.evidence.source).toBe("/etc/ssh/clawguard/principals");
  });
});

describe("ssh layer: the KRL on an agent (ssh.krl_fresh)", () => {
  const MIN = 60_000;
  /** The CA as harden installs it, with the list and the fetcher's record as given. */
  const audit = async (krl: string | null, record: Record<string, unknown> | null) => {
    const root = loadFixture("ssh-pass");
    writeFileSync(path.join(root, "etc/ssh/sshd_config.d/05-ca.conf"), renderSshCaDropIn());
    mkdirSync(path.join(root, "etc/ssh/clawguard"), { recursive: true });
    if (krl !== null) writeFileSync(path.join(root, "etc/ssh/clawguard/revoked.krl"), krl);
    if (record !== null) {
      mkdirSync(path.join(root, "var/lib/clawguard"), { recursive: true });
      writeFileSync(
        path.join(root, "var/lib/clawguard/krl-fetch.json"),
        JSON.stringify({ schema: "clawguard.krl-fetch/v1", url: "http://10.77.0.1:3129/ssh/krl", ...record }),
      );
    }
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["ssh"] });
    return one(report.findings, "ssh.krl_fresh");
  };

  it("passes a list fetched a moment ago, naming when", async () => {
    const at = Date.now() - 10_000;
    const f = await audit("KRL", { lastAttempt: at, lastSuccess: at, error: null, version: 7, sha256: null });
    expect(f.status).toBe("pass");
    expect(f.evidence.excerpt).toContain(`at ${new Date(at).toISOString()}`);
    expect(f.evidence.excerpt).toContain("version 7");
  });

  it("fails a list last fetched long ago, naming when and why the last attempt failed", async () => {
    const at = Date.now() - 30 * MIN;
    const f = await audit("KRL", {
      lastAttempt: Date.now() - 5_000,
      lastSuccess: at,
      error: "http://10.77.0.1:3129/ssh/krl: ETIMEDOUT; the KRL in place stays",
      version: 7,
      sha256: null,
    });
    expect(f.status).toBe("fail");
    expect(f.detail).toContain(`last fetched at ${new Date(at).toISOString()}, 30 min ago`);
    expect(f.evidence.excerpt).toContain("the last attempt failed: http://10.77.0.1:3129/ssh/krl: ETIMEDOUT");
  });

  it("fails a list never fetched, and a RevokedKeys file that is missing", async () => {
    const never = await audit("", { lastAttempt: Date.now(), lastSuccess: null, error: "ECONNREFUSED" });
    expect(never.status).toBe("fail");
    expect(never.detail).toMatch(/never fetched/);
    const missing = await audit(null, null);
    expect([missing.status, missing.severity]).toEqual(["fail", "critical"]);
    expect(missing.detail).toMatch(/missing: sshd refuses every public key/);
  });

  it("warns when nothing fetches the list, and has nothing to say without a CA", async () => {
    const hand = await audit("", null);
    expect(hand.status).toBe("warn");
    expect(hand.remediation).toMatch(/--krl-from/);
    const report = await runAudit(new LocalHost(loadFixture("ssh-pass"), { isRoot: false }), {
      layers: ["ssh"],
    });
    expect(one(report.findings, "ssh.krl_fresh").status).toBe("pass");
  });
});
