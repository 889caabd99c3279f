import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runAudit } from "../../src/audit/audit.js";
import { mapOpenClawAudit, sanitiseCheckId } from "../../src/checks/openclaw.js";
import { FactContext } from "../../src/host/context.js";
import { openClawAuditGatherer } from "../../src/host/gather/openclaw-audit.js";
import { LocalHost } from "../../src/host/host.js";
import { auditFixture, one } from "../helpers/fixture.js";

const DOCUMENTED = {
  ts: "2026-11-25T10:00:00Z",
  summary: { critical: 1, warn: 1, info: 1 },
  findings: [
    {
      checkId: "gateway.bind.not-loopback",
      severity: "critical",
      title: "Gateway listens on all interfaces",
      detail: "gateway.bind is lan",
      remediation: "openclaw config set gateway.bind loopback",
    },
    {
      checkId: "tools.exec.unrestricted",
      severity: "warn",
      title: "The exec tool runs any command",
      detail: "tools.exec.security is full",
      remediation: "openclaw config set tools.exec.security allowlist",
    },
    {
      checkId: "logging.redact",
      severity: "info",
      title: "Logs redact secrets",
      detail: "logging.redactSensitive is tools",
    },
  ],
};

// Recorded from `openclaw security audit --json` (openclaw 2026.9.6 on Node 24, empty state dir).
const RECORDED = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../fixtures/openclaw-audit-output/security-audit-2026.9.6.json",
);

let dir: string;
let savedPath: string | undefined;

function fakeOpenClaw(body: string): void {
  const p = path.join(dir, "openclaw");
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "clawguard-fake-openclaw-"));
  chmodSync(dir, 0o755);
  savedPath = process.env.PATH;
  process.env.PATH = `${dir}:${savedPath ?? ""}`;
});

afterEach(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

describe("openclaw layer", () => {
  it("runs the openclaw on PATH and maps its documented JSON into findings", async () => {
    // Only the exact arguments get the report: proves what was run.
    fakeOpenClaw(
      `[ "$*" = "security audit --json" ] || { echo "bad args: $*" >&2; exit 2; }\necho 'openclaw 2026.9.6'\ncat <<'JSON'\n${JSON.stringify(DOCUMENTED)}\nJSON`,
    );
    const report = await runAudit(new LocalHost("/"), { layers: ["openclaw"] });
    const f = report.findings;
    const ran = one(f, "openclaw.security_audit");
    expect(ran.status).toBe("pass");
    expect(ran.evidence.source).toBe(`${dir}/openclaw security audit --json`);
    expect(ran.evidence.excerpt).toContain("1 critical, 1 warn, 1 info");
    const bind = one(f, "openclaw.gateway_bind_not_loopback");
    expect([bind.status, bind.severity]).toEqual(["fail", "critical"]);
    expect(bind.remediation).toBe("openclaw config set gateway.bind loopback");
    const exec = one(f, "openclaw.tools_exec_unrestricted");
    expect([exec.status, exec.severity]).toEqual(["warn", "medium"]);
    const info = one(f, "openclaw.logging_redact");
    expect([info.status, info.severity]).toEqual(["pass", "info"]);
  });

  it("maps what openclaw 2026.9.6 really printed for a fresh install", async () => {
    fakeOpenClaw(`cat '${RECORDED}'`);
    const report = await runAudit(new LocalHost("/"), { layers: ["openclaw"] });
    const f = report.findings;
    expect(one(f, "openclaw.security_audit").evidence.excerpt).toContain("1 critical, 2 warn, 1 info");
    const noAuth = one(f, "openclaw.gateway_loopback_no_auth");
    expect([noAuth.status, noAuth.severity, noAuth.detail]).toEqual([
      "fail",
      "critical",
      "Gateway auth missing on loopback",
    ]);
    // OpenClaw's words are the detail; the title is the goal, named by OpenClaw's check id.
    expect(noAuth.title).toBe("OpenClaw's own check gateway.loopback_no_auth passes");
    expect(noAuth.remediation).toContain("Set gateway.auth");
    expect(one(f, "openclaw.gateway_trusted_proxies_missing").status).toBe("warn");
    expect(one(f, "openclaw.summary_attack_surface").status).toBe("pass");
  });

  it("reports output that is not the documented JSON as an error naming the command", async () => {
    fakeOpenClaw(`echo 'Error: config invalid' >&2; echo '{"findings": "none"}'; exit 1`);
    const report = await runAudit(new LocalHost("/"), { layers: ["openclaw"] });
    const err = one(report.findings, "openclaw.security_audit");
    expect(err.status).toBe("error");
    expect(err.evidence.source).toBe(`${dir}/openclaw security audit --json`);
    expect(err.evidence.excerpt).toContain("exit 1");
    expect(err.evidence.excerpt).toContain("config invalid");
  });

  it("gives up on a hung openclaw after the timeout", async () => {
    fakeOpenClaw("exec sleep 30");
    const started = Date.now();
    const fact = await openClawAuditGatherer(400)(new FactContext(new LocalHost("/")));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(fact.status).toBe("error");
    if (fact.status === "error") expect(fact.problems[0]?.kind).toBe("timeout");
  });

  it("skips with the reason when no openclaw binary exists", async () => {
    const { report } = await auditFixture("openclaw-careless", ["openclaw"]);
    const s = one(report.findings, "openclaw.security_audit");
    expect(s.status).toBe("skip");
    expect(s.evidence.excerpt).toContain("no openclaw binary found");
  });

  it("maps severities and sanitises check ids (pure)", () => {
    expect(sanitiseCheckId("Gateway.Auth--None!")).toBe("gateway_auth_none");
    expect(sanitiseCheckId("...")).toBe("unnamed");
    const out = mapOpenClawAudit({
      command: "openclaw security audit --json",
      ranAs: "uid 999",
      stateDir: "/home/openclaw/.openclaw",
      report: { findings: [{ checkId: "x", severity: "high", title: "T" }] },
    });
    // A severity OpenClaw does not document still fails, never passes silently.
    expect(out[0]).toMatchObject({ id: "openclaw.x", status: "fail", severity: "high", layer: "openclaw" });
    expect(out[0]?.evidence.source).toContain("/home/openclaw/.openclaw");
  });
});
