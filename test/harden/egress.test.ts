import { describe, expect, it } from "vitest";
import { runAudit } from "../../src/audit/audit.js";
import { LAYERS } from "../../src/checks/finding.js";
import { harden } from "../../src/harden/harden.js";
import { validateProfile } from "../../src/harden/profile.js";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { one } from "../helpers/fixture.js";
import { classicGuide } from "./guide.js";
import { snapshot, tempDir } from "./tree.js";

describe("harden --shield", () => {
  const profile = validateProfile({ shield: "10.9.0.1:3128", skip: LAYERS.filter((l) => l !== "egress") });

  it("plans the agent-side lockdown with the shield pinned, and writes nothing without --apply", async () => {
    const root = classicGuide();
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const report = await harden(host, new LocalWriter(host), { profile, apply: false });
    expect(report.egress?.paths).toEqual(
      expect.arrayContaining([
        "/etc/clawguard/lockdown.nft",
        "/etc/systemd/system/clawguard-lockdown.service",
      ]),
    );
    expect(report.egress?.ruleset).toContain("10.9.0.1");
    expect(report.egress?.applied).toBe(false);
    expect(snapshot(root)).toEqual(before);
  });

  it("applies it so that the audit's egress layer finds it saved and enabled; without a shield there is none", async () => {
    const root = classicGuide();
    const host = new LocalHost(root, { isRoot: false });
    const before = await runAudit(host, { layers: ["egress"] });
    expect(one(before.findings, "egress.lockdown_persisted").status).toBe("fail");

    const report = await harden(host, new LocalWriter(host), {
      profile,
      apply: true,
      stateDir: tempDir("state"),
    });
    expect(report.egress?.error).toBeUndefined();
    expect(report.egress?.applied).toBe(true);
    const after = await runAudit(host, { layers: ["egress"] });
    expect(one(after.findings, "egress.lockdown_persisted").status).toBe("pass");
    expect(one(after.findings, "egress.lockdown_enabled").status).toBe("pass");

    const none = await harden(host, new LocalWriter(host), {
      profile: validateProfile({ skip: profile.skip }),
      apply: false,
    });
    expect(none.egress).toBeUndefined();
  });
});
