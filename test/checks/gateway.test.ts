import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runAudit, type AuditReport } from "../../src/audit/audit.js";
import { checkGateway } from "../../src/checks/gateway.js";
import { LocalHost, runCommand } from "../../src/host/host.js";
import { ok } from "../../src/facts/fact.js";
import { auditFixture, loadFixture, one } from "../helpers/fixture.js";
import { auditServiceFixture } from "../host/openclaw-fixtures.js";

describe("gateway layer", () => {
  it("fails the careless install: --bind lan, listening on 0.0.0.0 and ::, auth none", async () => {
    const { report } = await auditFixture("openclaw-careless", ["gateway"]);
    const f = report.findings;
    expect(one(f, "gateway.installed").status).toBe("pass");
    const bind = one(f, "gateway.bind_loopback");
    expect(bind.status).toBe("fail");
    // The unit's flag beats the config's own "lan".
    expect(bind.evidence.source).toBe("/etc/systemd/system/openclaw.service ExecStart --bind");
    const live = one(f, "gateway.listener_loopback");
    expect(live.status).toBe("fail");
    expect(live.severity).toBe("critical");
    expect(live.evidence.excerpt).toContain("0.0.0.0:18789");
    expect(live.evidence.excerpt).toContain("[::]:18789");
    const auth = one(f, "gateway.auth_enabled");
    expect(auth.status).toBe("fail");
    expect(auth.severity).toBe("critical");
    expect(one(f, "gateway.auth_secret_strength").status).toBe("skip");
  });

  it("passes the good install: loopback in config, flag and live sockets, 46-char token", async () => {
    const { report } = await auditServiceFixture("openclaw-good", ["gateway"]);
    const f = report.findings;
    for (const id of [
      "installed",
      "config_valid",
      "bind_loopback",
      "listener_loopback",
      "auth_enabled",
      "auth_secret_strength",
    ])
      expect(one(f, `gateway.${id}`).status, id).toBe("pass");
    expect(one(f, "gateway.listener_loopback").evidence.excerpt).toContain("127.0.0.1:18789");
    // Only the length of the token may appear, never the token.
    expect(JSON.stringify(report)).not.toContain("fixture-token-0123456789abcdef");
    expect(one(f, "gateway.auth_secret_strength").evidence.excerpt).toContain("token of 46 chars");
  });

  it("reports a malformed openclaw.json with file and line, and finishes the audit", async () => {
    const root = loadFixture("openclaw-careless");
    writeFileSync(
      path.join(root, "root/.openclaw/openclaw.json"),
      '{\n  gateway: {\n    bind: "lan",,\n  },\n}\n',
    );
    const report = await runAudit(new LocalHost(root, { isRoot: false }), {
      layers: ["gateway", "user", "systemd", "credentials", "egress"],
    });
    const bad = one(report.findings, "gateway.config_valid");
    expect(bad.status).toBe("error");
    expect(bad.evidence.source).toBe("/root/.openclaw/openclaw.json:3");
    expect(bad.evidence.excerpt).toMatch(/^not valid JSON5/);
    // The flag in the unit still decides the bind; auth is unknown, so it is not guessed.
    expect(one(report.findings, "gateway.bind_loopback").status).toBe("fail");
    expect(one(report.findings, "gateway.auth_enabled").status).toBe("skip");
    for (const layer of ["user", "systemd", "credentials", "egress"])
      expect(
        report.findings.some((x) => x.layer === layer && x.status !== "skip"),
        layer,
      ).toBe(true);
  });

  it("skips everything when OpenClaw is not installed", async () => {
    const { report } = await auditFixture("tmp-fail", ["gateway"]);
    expect(report.findings.length).toBeGreaterThan(1);
    expect(report.findings.every((x) => x.status === "skip" || x.status === "error")).toBe(true);
    expect(one(report.findings, "gateway.installed").status).not.toBe("pass");
  });

  it("treats auto and custom non-loopback binds as exposed, custom 127.x as loopback (pure check)", () => {
    const base = {
      stateDir: "/home/o/.openclaw",
      configPath: "/home/o/.openclaw/openclaw.json",
      port: 18789,
      bindSource: "cfg",
      portSource: "cfg",
      stateDirExists: true,
      auth: { mode: "token", tokenLength: 12, source: "cfg" },
    };
    const run = (bind: string, customBindHost?: string) =>
      checkGateway({
        openclaw: ok({ installs: [{ ...base, bind, config: { customBindHost } }], units: [] }, []),
        listeners: ok([], []),
      });
    expect(one(run("auto"), "gateway.bind_loopback").status).toBe("fail");
    expect(one(run("tailnet"), "gateway.bind_loopback").status).toBe("fail");
    expect(one(run("custom", "0.0.0.0"), "gateway.bind_loopback").status).toBe("fail");
    expect(one(run("custom", "127.0.0.2"), "gateway.bind_loopback").status).toBe("pass");
    expect(one(run("custom", "::1"), "gateway.bind_loopback").status).toBe("pass");
    const weak = one(run("loopback"), "gateway.auth_secret_strength");
    expect(weak.status).toBe("fail");
    expect(weak.detail).toContain("12 chars");
    expect(one(run("loopback"), "gateway.listener_loopback").status).toBe("skip");
  });
});

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const asRoot = process.getuid?.() === 0;

/** Audit the gateway layer while a real socket listens on `addr`:18789 in a private network namespace. */
async function auditLiveListener(addr: string) {
  const root = loadFixture("openclaw-careless");
  const script = [
    "set -e",
    "ip link set lo up",
    // The kernel's own socket table, seen from this namespace, replaces the fixture's copy.
    `mount --bind /proc '${root}/proc'`,
    `'${process.execPath}' -e 'require("net").createServer().listen(18789, process.argv[1])' '${addr}' &`,
    "for i in $(seq 100); do grep -q ':4965 0\\{8,32\\}:0000 0A' /proc/net/tcp /proc/net/tcp6 && break; sleep 0.05; done",
    `'${process.execPath}' '${REPO}/bin/clawguard.js' audit --root '${root}' --layer gateway --json || true`,
    "kill $!",
  ].join("\n");
  const r = await runCommand(["unshare", "--net", "--mount", "sh", "-c", script], { timeoutMs: 15_000 });
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as AuditReport;
}

describe.runIf(asRoot)("gateway layer against the kernel's live sockets", () => {
  it("fails a gateway port bound to 0.0.0.0 and passes one bound to 127.0.0.1", async () => {
    const open = one((await auditLiveListener("0.0.0.0")).findings, "gateway.listener_loopback");
    expect([open.status, open.severity]).toEqual(["fail", "critical"]);
    // The source names the socket table and its line; the excerpt does not name the table again.
    expect(open.evidence.source).toMatch(/^\/proc\/net\/tcp line \d+$/);
    expect(open.evidence.excerpt).toMatch(/^0\.0\.0\.0:18789 \(line \d+\)$/);
    const closed = one((await auditLiveListener("127.0.0.1")).findings, "gateway.listener_loopback");
    expect(closed.status).toBe("pass");
    expect(closed.evidence.excerpt).toMatch(/^127\.0\.0\.1:18789 /);
  });
});
