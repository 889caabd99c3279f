import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";
import { auditServiceFixture, loadServiceFixture } from "../host/openclaw-fixtures.js";

describe("user layer", () => {
  it("fails a gateway that runs as root because the unit has no User=", async () => {
    const { report } = await auditFixture("openclaw-careless", ["user"]);
    const d = one(report.findings, "user.dedicated");
    expect(d.status).toBe("fail");
    expect(d.severity).toBe("critical");
    expect(d.evidence.excerpt).toContain("no User= line");
    expect(one(report.findings, "user.no_sudo").status).toBe("fail");
    expect(one(report.findings, "user.login_shell").status).toBe("fail");
  });

  it("passes a dedicated nologin user with no sudo (alice's sudoers.d rule does not count)", async () => {
    const { report } = await auditServiceFixture("openclaw-good", ["user"]);
    for (const id of ["dedicated", "no_sudo", "privileged_groups", "login_shell", "home_owned"])
      expect(one(report.findings, `user.${id}`).status, id).toBe("pass");
    expect(one(report.findings, "user.no_sudo").evidence.source).toContain("/etc/sudoers.d/alice");
  });

  it("fails a service user with a login shell, sudo through sudoers.d and membership in adm", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    const passwd = path.join(root, "etc/passwd");
    writeFileSync(passwd, readFileSync(passwd, "utf8").replace("/usr/sbin/nologin", "/bin/bash"));
    writeFileSync(
      path.join(root, "etc/group"),
      readFileSync(path.join(root, "etc/group"), "utf8") + "adm:x:4:openclaw\n",
    );
    writeFileSync(
      path.join(root, "etc/sudoers.d/openclaw"),
      "User_Alias AGENTS = openclaw\nAGENTS ALL=(ALL) NOPASSWD: ALL\n",
    );
    // sudo ignores names with a dot: this file must not count.
    writeFileSync(path.join(root, "etc/sudoers.d/ignored.bak"), "openclaw ALL=(ALL) ALL\n");
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["user"] });
    const sudo = one(report.findings, "user.no_sudo");
    expect(sudo.status).toBe("fail");
    expect(sudo.evidence.source).toBe("/etc/sudoers.d/openclaw:2");
    expect(one(report.findings, "user.privileged_groups").detail).toContain("adm");
    expect(one(report.findings, "user.login_shell").status).toBe("fail");
    // A login user with sudo is a person's account, not a dedicated one.
    expect(one(report.findings, "user.dedicated").status).toBe("fail");
  });

  it("accepts DynamicUser=yes as a dedicated user", async () => {
    const root = loadFixture("openclaw-careless");
    const unit = path.join(root, "etc/systemd/system/openclaw.service");
    writeFileSync(
      unit,
      readFileSync(unit, "utf8").replace(
        "[Service]\n",
        "[Service]\nDynamicUser=yes\nEnvironment=OPENCLAW_STATE_DIR=/root/.openclaw\n",
      ),
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["user"] });
    const d = one(report.findings, "user.dedicated");
    expect(d.status).toBe("pass");
    expect(d.evidence.source).toBe("/etc/systemd/system/openclaw.service:6");
    expect(one(report.findings, "user.no_sudo").status).toBe("skip");
  });
});
