import { describe, expect, it } from "vitest";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost, runCommand } from "../../src/host/host.js";
import { parseExposure } from "../../src/facts/systemd-analyze.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";
import { auditServiceFixture } from "../host/openclaw-fixtures.js";

const GOOD_UNIT = "etc/systemd/system/openclaw-gateway.service";
const hasAnalyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].some((p) => existsSync(p));

describe("systemd layer", () => {
  it("fails the careless unit on every sandbox directive and flags the user unit next to it", async () => {
    const { report } = await auditFixture("openclaw-careless", ["systemd"]);
    const f = report.findings;
    expect(one(f, "systemd.unit_present").status).toBe("pass");
    const conflict = one(f, "systemd.user_unit_conflict");
    expect(conflict.status).toBe("fail");
    expect(conflict.evidence.source).toBe("/root/.config/systemd/user/openclaw-gateway.service");
    expect(conflict.evidence.excerpt).not.toContain(conflict.evidence.source);
    expect(conflict.evidence.excerpt).toContain("next to system unit /etc/systemd/system/openclaw.service");
    for (const id of [
      "no_new_privileges",
      "protect_system",
      "protect_home",
      "private_tmp",
      "capability_bounding_set",
      "protect_proc",
      "umask",
    ])
      expect(one(f, `systemd.${id}`).status, id).toBe("fail");
    expect(one(f, "systemd.exec_loopback").status).toBe("fail");
    expect(one(f, "systemd.system_call_filter").status).toBe("fail");
    // Commands cannot run in a foreign root without root: the score is skipped with the reason.
    const score = one(f, "systemd.exposure_score");
    expect(score.status).toBe("skip");
    expect(score.evidence.excerpt).toContain("cannot run commands");
  });

  it("passes the hardened unit, with evidence naming the line of each directive", async () => {
    const { report } = await auditServiceFixture("openclaw-good", ["systemd"]);
    const bad = report.findings.filter((x) => x.status !== "pass" && x.id !== "systemd.exposure_score");
    expect(bad.map((x) => `${x.id}=${x.status}`)).toEqual([]);
    expect(one(report.findings, "systemd.protect_system").evidence.source).toBe(`/${GOOD_UNIT}:15`);
    expect(one(report.findings, "systemd.user_unit_conflict").status).toBe("pass");
  });

  it("fails MemoryDenyWriteExecute=yes and RestrictSUIDSGID=yes, warns on a killing SystemCallFilter, and reads drop-ins", async () => {
    const root = loadFixture("openclaw-careless");
    const dir = path.join(root, "etc/systemd/system/openclaw.service.d");
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, "50-harden.conf"),
      "[Service]\nMemoryDenyWriteExecute=yes\nSystemCallFilter=@system-service\nReadWritePaths=/etc /tmp\nRestrictSUIDSGID=yes\nExecStart=\nExecStart=/usr/bin/openclaw gateway run --bind loopback\n",
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["systemd"] });
    const mdwe = one(report.findings, "systemd.memory_deny_write_execute");
    expect(mdwe.status).toBe("fail");
    expect(mdwe.evidence.source).toBe("/etc/systemd/system/openclaw.service.d/50-harden.conf:2");
    expect(one(report.findings, "systemd.system_call_filter").status).toBe("warn");
    // systemd enforces it by failing openat2(), which OpenClaw's state lock needs.
    const suid = one(report.findings, "systemd.restrict_suid_sgid");
    expect(suid.status).toBe("fail");
    expect(suid.evidence.source).toBe("/etc/systemd/system/openclaw.service.d/50-harden.conf:5");
    const rw = one(report.findings, "systemd.read_write_paths");
    expect(rw.status).toBe("fail");
    expect(rw.detail).toContain("/etc, /tmp");
    // ExecStart= reset by the drop-in: the new command binds loopback.
    expect(one(report.findings, "systemd.exec_loopback").status).toBe("pass");
  });

  it.runIf(hasAnalyze)(
    "scores the units with the real systemd-analyze: good <= 1.5, careless UNSAFE",
    async () => {
      const good = loadFixture("openclaw-good");
      const careless = loadFixture("openclaw-careless");
      const score = async (p: string) => {
        const r = await runCommand(["systemd-analyze", "security", "--offline=yes", "--no-pager", p], {
          timeoutMs: 30_000,
        });
        return parseExposure(r.stdout);
      };
      const g = await score(path.join(good, GOOD_UNIT));
      const c = await score(path.join(careless, "etc/systemd/system/openclaw.service"));
      expect(g?.score).toBeLessThanOrEqual(1.5);
      expect(c?.score).toBeGreaterThan(9);
      expect(c?.rating).toBe("UNSAFE");
    },
  );

  it("parses the overall line and rejects output without one", () => {
    const p = parseExposure(
      "  ✓ UMask=   ok\n\n→ Overall exposure level for openclaw.service: 9.6 UNSAFE 😨\n",
    );
    expect(p).toEqual({
      score: 9.6,
      rating: "UNSAFE",
      line: "Overall exposure level for openclaw.service: 9.6 UNSAFE",
    });
    expect(parseExposure("Failed to load unit file")).toBeUndefined();
  });
});
