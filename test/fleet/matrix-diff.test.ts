import { describe, expect, it } from "vitest";
import { diffRuns } from "../../src/fleet/diff.js";
import { exitCodeOf, matrixOf, summaryOf, type AuditedHost } from "../../src/fleet/matrix.js";
import { finding, report } from "./reports-fixture.js";

const ok = (host: string, findings: ReturnType<typeof finding>[]): AuditedHost => ({
  host,
  address: host,
  status: "ok",
  report: report(findings),
});

const clean = ok("clean", [finding("gateway.bind", "pass"), finding("firewall.enabled", "pass")]);
const medium = ok("medium", [finding("gateway.bind", "pass"), finding("tmp.noexec", "fail", "medium")]);
const critical = ok("critical", [
  finding("gateway.bind", "fail", "critical"),
  finding("firewall.enabled", "fail", "high"),
  finding("tmp.noexec", "pass"),
]);
const down: AuditedHost = {
  host: "down",
  address: "10.0.0.9",
  status: "unreachable",
  error: { code: "CG_SSH_UNREACHABLE", message: "connect to host 10.0.0.9 port 22: No route to host" },
};

describe("the matrix", () => {
  it("puts hosts not audited first, then the worst", () => {
    const { rows, layers } = matrixOf([clean, medium, down, critical], "high");
    expect(rows.map((r) => r.host)).toEqual(["down", "critical", "medium", "clean"]);
    expect(layers).toEqual(["gateway", "firewall", "tmp"]);
    const worst = rows[1]!;
    expect(worst.cells.gateway).toEqual({ pass: 0, fail: 1, warn: 0, worst: "critical" });
    expect(worst.cells.tmp).toEqual({ pass: 1, fail: 0, warn: 0 });
    expect([worst.pass, worst.fail, worst.worst, worst.failing]).toEqual([1, 2, "critical", 2]);
  });

  it("counts failures at or above --fail-on for the summary and the exit code", () => {
    expect(summaryOf([clean, medium], "high")).toMatchObject({ hosts: 2, ok: 2, failing: 0 });
    expect(exitCodeOf(summaryOf([clean, medium], "high"))).toBe(0);
    expect(exitCodeOf(summaryOf([clean, medium], "medium"))).toBe(1);
    // A host that could not be audited is not a pass.
    expect(summaryOf([clean, down], "high")).toMatchObject({ ok: 1, unreachable: 1, failing: 0 });
    expect(exitCodeOf(summaryOf([clean, down], "high"))).toBe(1);
  });
});

describe("the diff of two runs", () => {
  const a = { id: "A", startedAt: "t1" };
  const b = { id: "B", startedAt: "t2" };

  it("names the host that regressed and the checks that passed and now fail", () => {
    const later = ok("clean", [
      finding("gateway.bind", "fail", "critical"),
      finding("firewall.enabled", "error"),
    ]);
    const d = diffRuns(a, [clean, critical], b, [later, critical]);
    expect(d.regressed).toEqual([
      {
        host: "clean",
        checks: [
          {
            id: "gateway.bind",
            layer: "gateway",
            severity: "critical",
            title: "check gateway.bind",
            from: "pass",
            to: "fail",
          },
          {
            id: "firewall.enabled",
            layer: "firewall",
            severity: "high",
            title: "check firewall.enabled",
            from: "pass",
            to: "error",
          },
        ],
      },
    ]);
    expect(d.improved).toEqual([]);
  });

  it("improvements, arrivals, departures, and hosts no longer audited", () => {
    const fixed = ok("critical", [finding("gateway.bind", "pass"), finding("firewall.enabled", "pass")]);
    const d = diffRuns(a, [clean, critical, medium], b, [{ ...down, host: "clean" }, fixed, ok("new", [])]);
    expect(d.improved.map((h) => [h.host, h.checks.map((c) => c.id)])).toEqual([
      ["critical", ["gateway.bind", "firewall.enabled"]],
    ]);
    expect(d.unreachable).toEqual([{ host: "clean", status: "unreachable", error: down.error }]);
    expect(d.appeared).toEqual(["new"]);
    expect(d.removed).toEqual(["medium"]);
    expect(d.regressed).toEqual([]);
  });

  it("a check only one run made is not a change", () => {
    const more = ok("clean", [...clean.report!.findings, finding("ssh.root_login", "fail")]);
    expect(diffRuns(a, [clean], b, [more]).regressed).toEqual([]);
  });
});
