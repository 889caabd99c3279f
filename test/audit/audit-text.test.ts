/**
 * The audit's text view reads at a glance: a header saying what was audited, the verdict in one
 * line, only what needs attention (worst first), skipped checks folded by reason, and what harden
 * would fix; -v lists every check; lines wrap at the width given.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { AuditReport } from "../../src/audit/audit.js";
import { severityRank, type Finding } from "../../src/checks/finding.js";
import { makeStyle, renderAuditText, wrapLine } from "../../src/render/audit-text.js";
import { loadFixture } from "../helpers/fixture.js";
import { runCli } from "../helpers/run-cli.js";

let root: string;
let report: AuditReport;
let text: string;
let code: number;

beforeAll(async () => {
  root = loadFixture("openclaw-careless");
  writeFileSync(path.join(root, "etc/hostname"), "agent-7\n");
  writeFileSync(
    path.join(root, "etc/os-release"),
    'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
  );
  const json = await runCli(["audit", "--root", root, "--skip", "openclaw", "--json"]);
  report = JSON.parse(json.out) as AuditReport;
  const r = await runCli(["audit", "--root", root, "--skip", "openclaw"]);
  text = r.out;
  code = r.code;
}, 60_000);

const lines = () => text.split("\n");
const count = (pred: (f: Finding) => boolean) => report.findings.filter(pred).length;

describe("audit text view", () => {
  it("starts with a header naming host, OS, version and whether it ran as root", () => {
    const head = lines()[0]!;
    expect(head).toContain("host agent-7");
    expect(head).toContain("Debian GNU/Linux 12 (bookworm)");
    expect(head).toMatch(/clawguard \d+\.\d+\.\d+/);
    expect(head).toMatch(/as root|not root/);
    expect(head).toContain(`system at ${root}`);
  });

  it("gives the verdict in the second line: counts by severity and the exit code", () => {
    const fails = report.findings.filter((f) => f.status === "fail");
    const critical = fails.filter((f) => f.severity === "critical").length;
    const summary = lines()[1]!;
    expect(summary).toMatch(new RegExp(`^${fails.length} fail \\(${critical} critical, `));
    expect(summary).toContain(`${count((f) => f.status === "warn")} warn`);
    expect(summary).toContain(`${count((f) => f.status === "pass")} pass`);
    expect(summary).toMatch(new RegExp(`exit ${code} \\(fail-on high\\)$`));
    expect(code).toBe(1);
  });

  it("lists only what needs attention, worst first, and every such finding once", () => {
    const marks = lines().filter((l) => /^ {2}(PASS|FAIL|WARN|SKIP|ERR )/.test(l));
    expect(marks.some((l) => /^ {2}(PASS|SKIP)/.test(l))).toBe(false);
    expect(marks.length).toBe(count((f) => ["fail", "warn", "error"].includes(f.status)));
    const ranks = marks.map((l) => severityRank(l.slice(7, 15).trim() as Finding["severity"]));
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  });

  it("puts a finding's detail on the line under its title, which is the check's goal", () => {
    const detailed = report.findings.filter((f) => f.detail && ["fail", "warn", "error"].includes(f.status));
    expect(detailed.length).toBeGreaterThan(0);
    const ls = lines();
    for (const f of detailed) {
      const at = ls.findIndex((l) => l.endsWith(`${f.title} [${f.id}]`) && /^ {2}(FAIL|WARN|ERR )/.test(l));
      expect(at, f.id).toBeGreaterThan(-1);
      expect(ls[at + 1]).toBe(`       ${f.detail}`);
    }
  });

  it("folds skipped checks into one line per shared reason, naming their layers", () => {
    const skips = report.findings.filter((f) => f.status === "skip");
    expect(skips.length).toBeGreaterThan(0);
    const folded = lines().filter((l) => / skipped: /.test(l));
    const total = folded.reduce((n, l) => n + Number(/: (\d+) checks? skipped: /.exec(l)![1]), 0);
    expect(total).toBe(skips.length);
    for (const f of skips)
      expect(folded.some((l) => l.includes(f.evidence.excerpt.split("\n")[0]!))).toBe(true);
  });

  it("ends by naming what clawguard harden would fix", () => {
    const fixable = report.findings.filter((f) => (f.status === "fail" || f.status === "warn") && f.fixable);
    const footer = lines().find((l) => l.startsWith("clawguard harden would fix"))!;
    expect(footer).toContain(`fix ${fixable.length} of these`);
    for (const f of fixable) expect(footer).toContain(f.id);
  });

  it("-v lists every check, passed and skipped ones too", async () => {
    const r = await runCli(["audit", "--root", root, "--skip", "openclaw", "-v"]);
    const marks = r.out.split("\n").filter((l) => /^ {2}(PASS|FAIL|WARN|SKIP|ERR )/.test(l));
    expect(marks.length).toBe(report.findings.length);
  });
});

describe("wrapping", () => {
  it("keeps every line within the width unless one word is longer", () => {
    const out = renderAuditText(report, { style: makeStyle(false), width: 60, failOn: "high", exitCode: 1 });
    for (const l of out.split("\n")) if (l.length > 60) expect(l.trim().includes(" ")).toBe(false);
    expect(out.split("\n").length).toBeGreaterThan(text.split("\n").length);
  });

  it("continues a wrapped line under its indent", () => {
    expect(wrapLine("  fix: one two three four", 14, 7)).toEqual([
      "  fix: one two",
      "       three",
      "       four",
    ]);
    expect(wrapLine("short", 14, 2)).toEqual(["short"]);
  });

  it("continues a detail under the detail, and a labelled line after its label", () => {
    const f: Finding = {
      id: "ssh.root_login",
      layer: "ssh",
      severity: "critical",
      status: "fail",
      title: "root cannot log in over SSH with a password",
      detail: "root can log in over SSH with a password and nothing stops it",
      evidence: { source: "/etc/ssh/sshd_config line 3", excerpt: "PermitRootLogin yes and more words here" },
      remediation: "",
      fixable: false,
    };
    const out = renderAuditText(
      { ...report, findings: [f] },
      { style: makeStyle(false), width: 40, failOn: "high", exitCode: 1 },
    ).split("\n");
    const at = out.findIndex((l) => l.startsWith("       root can log in"));
    expect(out[at + 1]).toMatch(/^ {7}\S/);
    const ev = out.findIndex((l) => l.startsWith("       evidence:"));
    expect(out[ev + 1]).toMatch(/^ {17}\S/);
    expect(wrapLine("no width at all here", undefined, 2)).toEqual(["no width at all here"]);
  });
});
