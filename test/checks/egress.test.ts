import { describe, expect, it } from "vitest";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runAudit } from "../../src/audit/audit.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, one } from "../helpers/fixture.js";
import { auditServiceFixture, loadServiceFixture } from "../host/openclaw-fixtures.js";

describe("egress layer", () => {
  it("warns when only HTTP_PROXY is set and fails a host without any lockdown", async () => {
    const { report } = await auditFixture("openclaw-careless", ["egress"]);
    const proxy = one(report.findings, "egress.proxy_configured");
    expect(proxy.status).toBe("warn");
    expect(proxy.title).toContain("Only HTTP_PROXY");
    expect(proxy.evidence.excerpt).toContain("/etc/systemd/system/openclaw.service:8");
    expect(one(report.findings, "egress.unit_ip_filter").status).toBe("fail");
    expect(one(report.findings, "egress.lockdown_persisted").status).toBe("fail");
    expect(one(report.findings, "egress.lockdown_enabled").status).toBe("fail");
    const live = one(report.findings, "egress.lockdown_live");
    expect(live.status).toBe("skip");
    expect(live.evidence.excerpt).toContain("cannot run commands");
  });

  it("passes the good install: proxy from the EnvironmentFile, IP filter, saved and enabled lockdown", async () => {
    const { report } = await auditServiceFixture("openclaw-good", ["egress"]);
    const proxy = one(report.findings, "egress.proxy_configured");
    expect(proxy.status).toBe("pass");
    expect(proxy.evidence.source).toBe("/etc/openclaw/gateway.env:2");
    for (const id of ["unit_ip_filter", "lockdown_persisted", "lockdown_enabled"])
      expect(one(report.findings, `egress.${id}`).status, id).toBe("pass");
  });

  it("fails a direct gateway, a lockdown file that does not drop, and an unenabled loader", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    writeFileSync(path.join(root, "etc/openclaw/gateway.env"), "NODE_ENV=production\n");
    writeFileSync(
      path.join(root, "etc/clawguard/lockdown.nft"),
      "table inet clawguard_egress {\n  chain output {\n    type filter hook output priority 0; policy accept;\n  }\n}\n",
    );
    rmSync(path.join(root, "etc/systemd/system/multi-user.target.wants/clawguard-lockdown.service"));
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["egress"] });
    expect(one(report.findings, "egress.proxy_configured").status).toBe("fail");
    expect(one(report.findings, "egress.lockdown_persisted").status).toBe("fail");
    expect(one(report.findings, "egress.lockdown_enabled").status).toBe("fail");
  });

  it("redacts credentials in a proxy URL", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    writeFileSync(
      path.join(root, "etc/openclaw/gateway.env"),
      "OPENCLAW_PROXY_URL=http://agent:hunter2secret@10.77.0.1:3128\nHTTPS_PROXY=http://agent:hunter2secret@10.77.0.1:3128\n",
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["egress"] });
    const proxy = one(report.findings, "egress.proxy_configured");
    expect(proxy.status).toBe("pass");
    expect(JSON.stringify(report)).not.toContain("hunter2secret");
    expect(proxy.evidence.excerpt).toContain("http://<redacted>@10.77.0.1:3128");
  });
});
