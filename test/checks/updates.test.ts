import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";

describe("updates layer", () => {
  it("fails when unattended-upgrades was removed (config files left are not an install)", async () => {
    const { report } = await auditFixture("updates-fail", ["updates"]);
    expect(one(report.findings, "updates.installed").status).toBe("fail");
    expect(one(report.findings, "updates.enabled").status).toBe("fail");
    expect(one(report.findings, "updates.security_origins").status).toBe("skip");
    expect(one(report.findings, "updates.timer").status).toBe("fail");
    expect(one(report.findings, "updates.last_run").status).toBe("skip");
  });

  it('does not count the binary alone: installed but Unattended-Upgrade "0" is not enabled', async () => {
    const { report } = await auditFixture("updates-disabled", ["updates"]);
    expect(one(report.findings, "updates.installed").status).toBe("pass");
    const enabled = one(report.findings, "updates.enabled");
    expect(enabled.status).toBe("fail");
    expect(enabled.evidence.excerpt).toContain('APT::Periodic::Unattended-Upgrade "0"');
    // The source names the file; the excerpt gives only the line in it.
    expect(enabled.evidence.source).toMatch(/20auto-upgrades$/);
    expect(enabled.evidence.excerpt).toContain('Unattended-Upgrade "0" (line 2)');
    expect(one(report.findings, "updates.security_origins").status).toBe("pass");
    const last = one(report.findings, "updates.last_run");
    expect(last.status).toBe("warn");
    expect(last.evidence.excerpt).toContain("No packages found");
  });

  it("passes an enabled install with security origins that ran recently", async () => {
    const root = loadFixture("updates-pass");
    const stamp = new Date(Date.now() - 3_600_000).toISOString().replace("T", " ").slice(0, 19);
    writeFileSync(
      path.join(root, "var/log/unattended-upgrades/unattended-upgrades.log"),
      `${stamp},100 INFO Starting unattended upgrades script\n${stamp},200 INFO All upgrades installed\n`,
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["updates"] });
    for (const id of ["installed", "enabled", "security_origins", "timer", "last_run"]) {
      expect(one(report.findings, `updates.${id}`).status, id).toBe("pass");
    }
    expect(one(report.findings, "updates.security_origins").evidence.excerpt).toContain(
      "label=Debian-Security",
    );
  });

  it("names a malformed apt config file and line, and still judges the package", async () => {
    const root = loadFixture("updates-pass");
    writeFileSync(path.join(root, "etc/apt/apt.conf.d/99broken"), 'APT::Periodic::Foo "1";\nAPT { Bar "x"\n');
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["updates"] });
    const err = report.findings.find((f) => f.status === "error");
    expect(err?.evidence.source).toMatch(/^\/etc\/apt\/apt\.conf\.d\/99broken:\d+$/);
    expect(one(report.findings, "updates.installed").status).toBe("pass");
  });
});

describe("updates layer: the security suite and needrestart", () => {
  it("passes the security suite of a deb822 source and needrestart set to restart on its own", async () => {
    const { report } = await auditFixture("updates-pass", ["updates"]);
    const repo = one(report.findings, "updates.security_repo");
    expect(repo.status).toBe("pass");
    expect(repo.evidence.source).toBe("/etc/apt/sources.list.d/debian.sources line 8");
    expect(repo.evidence.excerpt).toContain("bookworm-security");
    const nr = one(report.findings, "updates.needrestart");
    expect(nr.status).toBe("pass");
    expect(nr.evidence.source).toBe("/etc/needrestart/conf.d/autorestart.conf line 1");
  });

  it("fails a release whose sources have no enabled deb line for its security suite, and names the one to add", async () => {
    const { report } = await auditFixture("updates-nosecurity", ["updates"]);
    const repo = one(report.findings, "updates.security_repo");
    expect(repo.status).toBe("fail");
    expect(repo.fixable).toBe(true);
    expect(repo.remediation).toContain(
      "deb http://security.debian.org/debian-security bookworm-security main contrib",
    );
    // A commented line, a deb-src line and a disabled stanza install nothing.
    expect(repo.evidence.excerpt).toContain(
      "/etc/apt/sources.list, /etc/apt/sources.list.d/security.sources",
    );
    const nr = one(report.findings, "updates.needrestart");
    expect(nr.status).toBe("fail");
    expect(nr.evidence.excerpt).toContain("not set");
  });

  it("says needrestart is missing when the package is not installed", async () => {
    const { report } = await auditFixture("updates-fail", ["updates"]);
    expect(one(report.findings, "updates.needrestart").evidence.excerpt).toContain(
      "needrestart not installed",
    );
    expect(one(report.findings, "updates.security_repo").status).toBe("fail");
  });

  it("names the file and line of a malformed sources file", async () => {
    const root = loadFixture("updates-pass");
    writeFileSync(
      path.join(root, "etc/apt/sources.list.d/broken.sources"),
      "Types: deb\nthis is not a field\n",
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["updates"] });
    const err = report.findings.find((f) => f.id === "updates.security_repo" && f.status === "error");
    // The source says where; the excerpt says what, without naming the file again.
    expect(err?.evidence).toEqual({
      source: "/etc/apt/sources.list.d/broken.sources:2",
      excerpt: 'expected "Field: value", found "this is not a field"',
    });
  });
});
