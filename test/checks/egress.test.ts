import { describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
    expect(proxy.detail).toContain("Only HTTP_PROXY");
    expect(proxy.evidence.source).toBe("/etc/systemd/system/openclaw.service");
    expect(proxy.evidence.excerpt).toContain("(line 8)");
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

describe("egress.link_encrypted", () => {
  const link = async (root: string) =>
    one(
      (await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["egress"] })).findings,
      "egress.link_encrypted",
    );

  it("passes a proxy a WireGuard config carries and starts at boot, and fails it once the tunnel is gone", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    const on = await link(root);
    expect(on.status).toBe("pass");
    expect(on.evidence).toMatchObject({ source: "/etc/wireguard/cg0.conf" });
    expect(on.evidence.excerpt).toMatch(
      /carries 10.77.0.1 and wg-quick@cg0 starts at boot \(not checked live/,
    );
    rmSync(path.join(root, "etc/systemd/system/multi-user.target.wants/wg-quick@cg0.service"));
    expect((await link(root)).status).toBe("fail");
    rmSync(path.join(root, "etc/wireguard/cg0.conf"));
    const off = await link(root);
    expect(off.status).toBe("fail");
    expect(off.detail).toBe("The gateway reaches its proxy 10.77.0.1 without WireGuard");
    expect(off.remediation).toMatch(/clawguard lockdown --join CODE --apply/);
  });

  it("passes a proxy on this server, fails a proxy given by name, and judges the route when it can be asked", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    writeFileSync(
      path.join(root, "etc/openclaw/gateway.env"),
      "OPENCLAW_PROXY_URL=http://127.0.0.1:3128\nHTTPS_PROXY=http://127.0.0.1:3128\n",
    );
    expect((await link(root)).status).toBe("pass");
    writeFileSync(
      path.join(root, "etc/openclaw/gateway.env"),
      "OPENCLAW_PROXY_URL=http://shield.example:3128\nHTTPS_PROXY=http://shield.example:3128\n",
    );
    expect((await link(root)).detail).toMatch(/is a name/);
  });

  it("in a live system, passes only a route that leaves by a WireGuard interface that is up", async () => {
    const { checkEgress } = await import("../../src/checks/egress.js");
    const { root } = loadServiceFixture("openclaw-good");
    const { FactContext } = await import("../../src/host/context.js");
    const ctx = new FactContext(new LocalHost(root, { isRoot: false }));
    const [openclaw, lockdown, routes] = await Promise.all([
      ctx.get("openclaw"),
      ctx.get("lockdown"),
      ctx.get("routes"),
    ]);
    const live = (dev: string, up: string[]) =>
      one(
        checkEgress({
          openclaw,
          lockdown,
          routes,
          wireguardLink: {
            status: "ok",
            value: { configs: [], live: { interfaces: up }, routes: { "10.77.0.1": dev } },
            sources: [],
            problems: [],
          },
        }),
        "egress.link_encrypted",
      );
    expect(live("cg0", ["cg0"])).toMatchObject({
      status: "pass",
      evidence: { source: "ip route get 10.77.0.1" },
    });
    const clear = live("eth0", ["cg0"]);
    expect(clear.status).toBe("fail");
    expect(clear.detail).toMatch(
      /without WireGuard: tokens, destinations and CONNECT lines cross the network in cleartext/,
    );
    expect(live("cg0", []).status).toBe("fail");
  });
});

describe("egress: a route out past the shield", () => {
  const routes = (root: string, v4: string) => {
    mkdirSync(path.join(root, "proc/net"), { recursive: true });
    writeFileSync(
      path.join(root, "proc/net/route"),
      `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n${v4}`,
    );
  };
  const audit = async (root: string) =>
    one(
      (await runAudit(new LocalHost(root, { isRoot: false }), { layers: ["egress"] })).findings,
      "egress.direct_route",
    );

  it("passes when the default route's next hop is the shield the gateway uses (gateway mode)", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    const shield = /https?:\/\/([\d.]+)/.exec(
      readFileSync(path.join(root, "etc/openclaw/gateway.env"), "utf8"),
    )![1]!;
    const hex = shield
      .split(".")
      .map(Number)
      .reverse()
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("")
      .toUpperCase();
    routes(root, `eth0\t00000000\t${hex}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`);
    const f = await audit(root);
    expect(f.status).toBe("pass");
    expect(f.evidence.excerpt).toContain(`default via ${shield} dev eth0: the shield is the gateway`);
  });

  it("passes without any default route, and warns of one that leads elsewhere", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    routes(root, "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
    expect((await audit(root)).status).toBe("pass");
    routes(root, "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
    const f = await audit(root);
    expect(f.status).toBe("warn");
    expect(f.evidence.excerpt).toMatch(/default via 192\.0\.2\.1 dev eth0 .*root here can flush/);
  });

  it("says nothing of routes for a mounted image, which has no kernel", async () => {
    const { root } = loadServiceFixture("openclaw-good");
    expect((await audit(root)).status).toBe("skip");
  });
});
