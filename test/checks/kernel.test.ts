import { describe, expect, it } from "vitest";
import { checkKernel } from "../../src/checks/kernel.js";
import { ok } from "../../src/facts/fact.js";
import { parseSysctlConf, type SysctlFact } from "../../src/facts/sysctl.js";
import { auditFixture, one } from "../helpers/fixture.js";

const ALL = `kernel.kptr_restrict = 2
kernel.dmesg_restrict = 1
fs.suid_dumpable = 0
net.ipv4.conf.all.rp_filter = 1
net.ipv4.conf.default.rp_filter = 1
net.ipv4.conf.all.log_martians = 1
net.ipv4.conf.default.log_martians = 1
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
net.ipv6.conf.all.accept_redirects = 0
net.ipv6.conf.default.accept_redirects = 0
net.ipv4.conf.all.accept_source_route = 0
net.ipv4.conf.default.accept_source_route = 0
net.ipv6.conf.all.accept_source_route = 0
net.ipv6.conf.default.accept_source_route = 0
net.ipv4.tcp_syncookies = 1
`;

const coredump = ok(
  {
    config: {
      Coredump: { Storage: [{ value: "none", at: "/c:2" }], ProcessSizeMax: [{ value: "0", at: "/c:3" }] },
    },
    files: ["/c"],
    limits: [{ domain: "*", type: "hard", value: "0", source: "/l", line: 1 }],
  },
  ["/c"],
);

function judge(live: Record<string, string>, readOnly: string[] = []) {
  const fact: SysctlFact = {
    assignments: parseSysctlConf(ALL, "/etc/sysctl.d/60-clawguard.conf"),
    files: ["/etc/sysctl.d/60-clawguard.conf"],
    live,
    readOnly,
  };
  return checkKernel({ sysctl: ok(fact, fact.files), coredump });
}

describe("kernel layer", () => {
  it("passes drop-ins that set every value, in either key form, with the right file masking a vendor one", async () => {
    const { report } = await auditFixture("kernel-pass", ["kernel"]);
    const bad = report.findings.filter((f) => f.status !== "pass" && f.status !== "skip");
    expect(bad.map((f) => `${f.id}: ${f.evidence.excerpt}`)).toEqual([]);
    expect(one(report.findings, "kernel.syncookies").evidence).toMatchObject({
      source: "/etc/sysctl.d/60-hardening.conf",
    });
    expect(one(report.findings, "kernel.syncookies").evidence.excerpt).toContain("= 1 (line 18)");
    // A copy of a system has no live kernel to read.
    expect(one(report.findings, "kernel.host_kernel").status).toBe("skip");
  });

  it("fails what is missing, and a later sysctl.conf undoing a drop-in, naming file and line", async () => {
    const { report } = await auditFixture("kernel-fail", ["kernel"]);
    expect(one(report.findings, "kernel.syncookies").status).toBe("pass");
    const rp = one(report.findings, "kernel.rp_filter");
    expect(rp.status).toBe("fail");
    expect(rp.evidence.excerpt).toContain("net.ipv4.conf.all.rp_filter not set in any sysctl.d file");
    const dumps = one(report.findings, "kernel.core_dumps");
    expect(dumps.status).toBe("fail");
    expect(dumps.evidence.excerpt).toContain("fs.suid_dumpable = 2 (/etc/sysctl.conf line 2)");
    expect(dumps.evidence.excerpt).toContain("Storage=external (/etc/systemd/coredump.conf:3)");
    expect(dumps.evidence.excerpt).toContain("ProcessSizeMax not set");
    expect(dumps.evidence.excerpt).toContain(
      "* hard core unlimited (/etc/security/limits.d/dev.conf line 2)",
    );
  });

  it("passes modules kept out by an install line in any no-op form, the /etc file masking a vendor one", async () => {
    const { report } = await auditFixture("kernel-pass", ["kernel"]);
    const mods = one(report.findings, "kernel.unused_modules");
    expect(mods.status).toBe("pass");
    expect(mods.evidence.excerpt).toContain(
      "install usb_storage /bin/true (/etc/modprobe.d/cis.conf line 6)",
    );
    expect(mods.evidence.excerpt).toContain(
      "install firewire-core /bin/true (/etc/modprobe.d/firewire.conf line 1)",
    );
  });

  it("fails modules only blacklisted, or whose first install line, in read order, loads them", async () => {
    const { report } = await auditFixture("kernel-fail", ["kernel"]);
    const mods = one(report.findings, "kernel.unused_modules");
    expect(mods.status).toBe("fail");
    expect(mods.fixable).toBe(true);
    expect(mods.evidence.excerpt).toBe(
      "loadable on demand: dccp, sctp, rds (no install line that loads nothing)",
    );
    expect(mods.remediation).toMatch(
      /^printf 'install dccp \/bin\/true\\nblacklist dccp\\n.*' > \/etc\/modprobe\.d\/60-clawguard\.conf$/,
    );
  });

  it("fails a value set for boot but not in force, where the system could apply it", () => {
    const live = Object.fromEntries(parseSysctlConf(ALL, "x").map((a) => [a.key, a.value]));
    expect(judge(live).filter((f) => f.status !== "pass")).toEqual([]);
    const f = judge({ ...live, "net.ipv4.conf.all.accept_redirects": "1" });
    const redirects = one(f, "kernel.icmp_redirects");
    expect(redirects.status).toBe("fail");
    expect(redirects.evidence.excerpt).toContain("but the kernel holds 1 now");
  });

  it("warns, without a fix, about values a container's host owns", () => {
    const live = Object.fromEntries(parseSysctlConf(ALL, "x").map((a) => [a.key, a.value]));
    const f = judge({ ...live, "kernel.dmesg_restrict": "0" }, ["kernel.dmesg_restrict"]);
    expect(one(f, "kernel.pointer_leaks").status).toBe("pass");
    const host = one(f, "kernel.host_kernel");
    expect(host.status).toBe("warn");
    expect(host.fixable).toBe(false);
    expect(host.evidence.excerpt).toBe("kernel.dmesg_restrict: 1 at boot, now 0 (read-only here)");
  });
});
