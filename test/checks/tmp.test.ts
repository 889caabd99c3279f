import { describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import path from "node:path";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";

describe("tmp layer", () => {
  it("fails a stock /tmp that lives on the root filesystem, and warns about apt", async () => {
    const { report } = await auditFixture("tmp-fail", ["tmp"]);
    expect(one(report.findings, "tmp.live_options").status).toBe("fail");
    expect(one(report.findings, "tmp.persistent_options").status).toBe("fail");
    const apt = one(report.findings, "tmp.apt_tempdir");
    expect(apt.status).toBe("warn");
    expect(apt.fixable).toBe(true);
  });

  it("passes a noexec tmpfs in fstab with apt's template dir moved (nested apt.conf syntax)", async () => {
    const { report } = await auditFixture("tmp-pass", ["tmp"]);
    expect(one(report.findings, "tmp.live_options").status).toBe("pass");
    const persistent = one(report.findings, "tmp.persistent_options");
    expect(persistent.status).toBe("pass");
    expect(persistent.evidence.source).toBe("/etc/fstab line 2");
    const apt = one(report.findings, "tmp.apt_tempdir");
    expect(apt.status).toBe("pass");
    expect(apt.evidence.excerpt).toContain("/var/cache/apt/tmp");
  });

  it("reads tmp.mount with its drop-in, and still fails the live mount that lacks noexec", async () => {
    const { report } = await auditFixture("tmp-mount-unit", ["tmp"]);
    const live = one(report.findings, "tmp.live_options");
    expect(live.status).toBe("fail");
    expect(live.detail).toContain("noexec");
    const persistent = one(report.findings, "tmp.persistent_options");
    expect(persistent.status).toBe("pass");
    expect(persistent.evidence.source).toContain("tmp.mount.d/clawguard.conf");
    // noexec is configured, so apt without a template dir is now a real breakage.
    expect(one(report.findings, "tmp.apt_tempdir").status).toBe("fail");
  });

  it("reports a missing /proc as an error naming the file and still checks the rest", async () => {
    const root = loadFixture("tmp-pass");
    rmSync(path.join(root, "proc"), { recursive: true });
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["tmp"] });
    const err = report.findings.find((f) => f.status === "error");
    expect(err?.evidence.source).toBe("/proc/self/mounts");
    expect(err?.evidence.excerpt).toContain("does not exist");
    expect(one(report.findings, "tmp.persistent_options").status).toBe("pass");
    expect(one(report.findings, "tmp.apt_tempdir").status).toBe("pass");
  });
});
