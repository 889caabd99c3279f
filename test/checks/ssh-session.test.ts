import { describe, expect, it } from "vitest";
import { checkSshSession, knownLoginUsers } from "../../src/checks/ssh-session.js";
import { table } from "../../src/facts/record.js";
import type { SshdFact, SshdSettings } from "../../src/facts/sshd.js";
import { auditFixture, one } from "../helpers/fixture.js";

function fact(settings: Record<string, string>, over: Partial<SshdFact> = {}): SshdFact {
  const s: SshdSettings = table();
  for (const [k, v] of Object.entries(settings)) s[k] = [{ value: v, source: "sshd -T" }];
  return {
    via: "sshd -T",
    settings: s,
    matches: [],
    files: ["/etc/ssh/sshd_config"],
    configured: [],
    listening: [],
    ports: [22],
    keyUsers: ["root", "ops"],
    authorizedKeys: [{ user: "ops", path: "/home/ops/.ssh/authorized_keys", keys: 1 }],
    keysUnknown: [],
    keysProblems: [],
    ...over,
  };
}

describe("ssh layer: sessions and who may log in", () => {
  it("passes the limits, in sshd's time units, and AllowUsers lines that accumulate", async () => {
    const { report } = await auditFixture("ssh-pass", ["ssh"]);
    for (const id of [
      "max_auth_tries",
      "login_grace_time",
      "client_alive",
      "log_level",
      "compression",
      "allow_users",
    ])
      expect([id, one(report.findings, `ssh.${id}`).status]).toEqual([id, "pass"]);
    expect(one(report.findings, "ssh.allow_users").evidence).toEqual({
      source: "/etc/ssh/sshd_config.d/10-clawguard.conf line 16",
      excerpt: "admin (line 16); deploy@10.0.0.0/8 (line 17)",
    });
  });

  it("fails OpenSSH's defaults, naming them", async () => {
    const { report } = await auditFixture("ssh-fail", ["ssh"]);
    const tries = one(report.findings, "ssh.max_auth_tries");
    expect([tries.status, tries.evidence.source, tries.evidence.excerpt]).toEqual([
      "fail",
      "OpenSSH default",
      "MaxAuthTries 6",
    ]);
    expect(one(report.findings, "ssh.login_grace_time").status).toBe("fail");
    expect(one(report.findings, "ssh.client_alive").evidence.excerpt).toBe(
      "ClientAliveInterval 0, ClientAliveCountMax 3 (OpenSSH default), TCPKeepAlive yes",
    );
    expect(one(report.findings, "ssh.log_level").status).toBe("fail");
    expect(one(report.findings, "ssh.compression").status).toBe("fail");
  });

  it("fails LoginGraceTime 0, which lets an unauthenticated connection wait forever", () => {
    const f = checkSshSession(fact({ logingracetime: "0" }));
    expect(one(f, "ssh.login_grace_time").status).toBe("fail");
  });

  it("names the accounts for AllowUsers only when nobody else can log in", () => {
    const off = { passwordauthentication: "no" };
    expect(knownLoginUsers(fact(off))).toEqual({ users: ["ops"] });
    expect(one(checkSshSession(fact(off)), "ssh.allow_users").remediation).toContain("AllowUsers ops");
    expect(knownLoginUsers(fact({}))).toEqual({
      why: "passwords are still accepted, so accounts without a key may log in",
    });
    expect(knownLoginUsers(fact({ ...off, trustedusercakeys: "/etc/ssh/ca.pub" }))).toMatchObject({
      why: expect.stringContaining("TrustedUserCAKeys"),
    });
    expect(
      knownLoginUsers(fact({ ...off, authorizedkeyscommand: "/usr/bin/sss_ssh_authorizedkeys" })),
    ).toMatchObject({
      why: expect.stringContaining("AuthorizedKeysCommand"),
    });
    const unreadable = fact(off, {
      keysUnknown: [{ kind: "permission", source: "/home/x/.ssh/authorized_keys", message: "denied" }],
    });
    expect(knownLoginUsers(unreadable)).toEqual({ why: "some authorized_keys files could not be read" });
    const warn = one(checkSshSession(unreadable), "ssh.allow_users");
    expect(warn.status).toBe("warn");
    expect(warn.detail).toContain("harden leaves AllowUsers to you");
  });
});
