import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";

describe("fail2ban layer", () => {
  it("flags Debian's stock sshd jail that cannot find /var/log/auth.log, and lenient [DEFAULT]s", async () => {
    const { report } = await auditFixture("fail2ban-fail", ["fail2ban"]);
    expect(one(report.findings, "fail2ban.installed").status).toBe("pass");
    expect(one(report.findings, "fail2ban.enabled").status).toBe("fail");
    // A fixture is not a running system: whether fail2ban runs is not guessed.
    expect(one(report.findings, "fail2ban.running").status).toBe("skip");
    const jail = one(report.findings, "fail2ban.sshd_jail");
    expect(jail.status).toBe("pass");
    expect(jail.evidence.source).toBe("/etc/fail2ban/jail.d/defaults-debian.conf line 2");
    const backend = one(report.findings, "fail2ban.backend");
    expect(backend.status).toBe("fail");
    expect(backend.severity).toBe("critical");
    expect(backend.detail).toContain("Have not found any log file for sshd jail");
    // %(sshd_log)s resolves through paths-common.conf and paths-debian.conf.
    expect(backend.evidence.excerpt).toContain("logpath = %(sshd_log)s -> /var/log/auth.log");
    expect(backend.evidence.excerpt).toContain("rsyslog is not installed");
    expect(backend.remediation).toContain("backend = systemd");
    expect(one(report.findings, "fail2ban.port").status).toBe("pass");
    const ban = one(report.findings, "fail2ban.bantime");
    expect(ban.status).toBe("fail");
    expect(ban.evidence).toEqual({
      source: "/etc/fail2ban/jail.local line 3",
      excerpt: "bantime = 600 (from [DEFAULT])",
    });
    expect(one(report.findings, "fail2ban.findtime").status).toBe("pass");
    const retry = one(report.findings, "fail2ban.maxretry");
    expect(retry.status).toBe("fail");
    expect(retry.evidence.excerpt).toBe("maxretry = 10 (from [DEFAULT])");
  });

  it("passes a journal-backed jail on sshd's real port, enabled at boot", async () => {
    const { report } = await auditFixture("fail2ban-pass", ["fail2ban"]);
    for (const id of [
      "fail2ban.installed",
      "fail2ban.enabled",
      "fail2ban.sshd_jail",
      "fail2ban.backend",
      "fail2ban.port",
      "fail2ban.bantime",
      "fail2ban.findtime",
      "fail2ban.maxretry",
    ]) {
      expect([id, one(report.findings, id).status]).toEqual([id, "pass"]);
    }
    expect(one(report.findings, "fail2ban.findtime").evidence.excerpt).toBe("findtime = 1h 30m");
  });

  it("fails backend = systemd without python3-systemd", async () => {
    const root = loadFixture("fail2ban-pass");
    const status = path.join(root, "var/lib/dpkg/status");
    const { readFileSync } = await import("node:fs");
    writeFileSync(
      status,
      readFileSync(status, "utf8").replace("Package: python3-systemd", "Package: python3-other"),
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["fail2ban"] });
    const b = one(report.findings, "fail2ban.backend");
    expect(b.status).toBe("fail");
    expect(b.evidence.excerpt).toContain("python3-systemd is not installed");
    expect(b.remediation).toContain("apt-get install -y python3-systemd");
  });

  it("skips the jail checks when no file enables an sshd jail, and reports an unreadable bantime", async () => {
    const root = loadFixture("fail2ban-fail");
    rmSync(path.join(root, "etc/fail2ban/jail.d/defaults-debian.conf"));
    let report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["fail2ban"] });
    expect(one(report.findings, "fail2ban.sshd_jail").status).toBe("fail");
    expect(one(report.findings, "fail2ban.backend").status).toBe("skip");
    writeFileSync(path.join(root, "etc/fail2ban/jail.local"), "[sshd]\nenabled = yes\nbantime = one hour\n");
    report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["fail2ban"] });
    const ban = one(report.findings, "fail2ban.bantime");
    expect(ban.status).toBe("error");
    expect(ban.evidence.source).toBe("/etc/fail2ban/jail.local:3");
    expect(ban.evidence.excerpt).toContain("bantime = one hour is not a fail2ban time");
  });
});
