import { describe, expect, it } from "vitest";
import { LOGIN_NOTICE } from "../../src/checks/ssh-banner.js";
import { noticeProblem } from "../../src/facts/banners.js";
import { ok } from "../../src/facts/fact.js";
import type { SshdFact } from "../../src/facts/sshd.js";
import { planLoginNotices } from "../../src/harden/plan-banner.js";
import { auditFixture, one } from "../helpers/fixture.js";

describe("ssh.banner", () => {
  it("passes an sshd Banner of the operator's own and a console notice that name no OS", async () => {
    const { report } = await auditFixture("ssh-pass", ["ssh"]);
    const b = one(report.findings, "ssh.banner");
    expect(b.status).toBe("pass");
    expect(b.evidence).toEqual({
      source: "/etc/ssh/notice, /etc/issue",
      excerpt: "sshd Banner /etc/ssh/notice; console /etc/issue",
    });
  });

  it("fails no sshd Banner and Debian's stock /etc/issue, which names the release", async () => {
    const { report } = await auditFixture("ssh-fail", ["ssh"]);
    const b = one(report.findings, "ssh.banner");
    expect(b.status).toBe("fail");
    expect(b.fixable).toBe(true);
    expect(b.evidence.excerpt).toBe(
      'sshd shows no notice (Banner none, OpenSSH default); console /etc/issue: shows the system ("Debian")',
    );
  });

  it("judges a notice by what it says and what it shows", () => {
    expect(noticeProblem(null)).toBe("missing");
    expect(noticeProblem("\n")).toBe("empty");
    expect(noticeProblem("Authorized use only on \\s \\r")).toBe('shows the system ("\\\\s")');
    expect(noticeProblem("Welcome!")).toBe("does not say access is for authorized users only");
    expect(noticeProblem(LOGIN_NOTICE)).toBeUndefined();
  });
});

describe("harden: the login notices", () => {
  const sshd = (banner?: { value: string; source: string }) =>
    ok({ settings: banner ? { banner: [banner] } : {} } as unknown as SshdFact, []);
  const banners = (texts: Record<string, string | null>) => ok({ texts }, []);

  it("writes /etc/issue and /etc/issue.net where they fall short, and points sshd at issue.net", () => {
    const p = planLoginNotices(
      {
        sshd: sshd(),
        banners: banners({ "/etc/issue": "Debian GNU/Linux 12 \\n \\l\n", "/etc/issue.net": null }),
      },
      ["ssh.banner"],
    );
    expect(p.bannerPath).toBe("/etc/issue.net");
    expect(p.changes.map((c) => (c.kind === "file" ? [c.path, c.content, c.mode] : c.kind))).toEqual([
      ["/etc/issue", LOGIN_NOTICE, 0o644],
      ["/etc/issue.net", LOGIN_NOTICE, 0o644],
    ]);
  });

  it("keeps a banner the operator set that already says what it should, and fixes only the console's", () => {
    const p = planLoginNotices(
      {
        sshd: sshd({ value: "/etc/ssh/notice", source: "/etc/ssh/sshd_config" }),
        banners: banners({
          "/etc/issue": "Debian GNU/Linux 12\n",
          "/etc/issue.net": "Debian GNU/Linux 12\n",
          "/etc/ssh/notice": "Authorized staff only.\n",
        }),
      },
      ["ssh.banner"],
    );
    expect(p.bannerPath).toBe("/etc/ssh/notice");
    expect(p.changes.map((c) => (c.kind === "file" ? c.path : c.kind))).toEqual(["/etc/issue"]);
  });

  it("replaces an operator's banner that names the OS, and writes nothing when the banner passed", () => {
    const facts = {
      sshd: sshd({ value: "/etc/ssh/notice", source: "/etc/ssh/sshd_config" }),
      banners: banners({
        "/etc/issue": LOGIN_NOTICE,
        "/etc/issue.net": null,
        "/etc/ssh/notice": "Ubuntu 24.04\n",
      }),
    };
    const p = planLoginNotices(facts, ["ssh.banner"]);
    expect(p.bannerPath).toBe("/etc/issue.net");
    expect(p.changes.map((c) => (c.kind === "file" ? c.path : c.kind))).toEqual(["/etc/issue.net"]);
    expect(planLoginNotices(facts, []).changes).toEqual([]);
  });
});
