/**
 * --layer and --skip take layers and check ids; asking for and skipping the same thing is a
 * usage error. Waivers keep a known exception out of the exit code until their date passes.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { AuditReport } from "../../src/audit/audit.js";
import { applyWaivers, hostMatches, parseWaivers } from "../../src/audit/waivers.js";
import type { Finding } from "../../src/checks/finding.js";
import { tempDir } from "../harden/tree.js";
import { loadFixture } from "../helpers/fixture.js";
import { runCli } from "../helpers/run-cli.js";

let root: string;

beforeAll(() => {
  root = loadFixture("openclaw-careless");
  writeFileSync(path.join(root, "etc/hostname"), "agent-7\n");
});

async function audit(...args: string[]): Promise<{ code: number; report?: AuditReport; err: string }> {
  const r = await runCli(["audit", "--root", root, "--json", ...args]);
  return { code: r.code, report: r.out ? (JSON.parse(r.out) as AuditReport) : undefined, err: r.err };
}

const ids = (r?: AuditReport) => r?.findings.map((f) => f.id) ?? [];

describe("--layer and --skip with check ids", () => {
  it("--layer ID reports that check alone, and its layer's other checks not", async () => {
    const r = await audit("--layer", "tmp.apt_tempdir", "user.dedicated");
    expect(r.code, r.err).not.toBe(2);
    expect(new Set(ids(r.report))).toEqual(new Set(["tmp.apt_tempdir", "user.dedicated"]));
  });

  it("--skip ID leaves that check out and keeps the rest of its layer", async () => {
    const all = await audit("--layer", "user");
    const r = await audit("--layer", "user", "--skip", "user.login_shell");
    expect(ids(all.report)).toContain("user.login_shell");
    expect(ids(r.report)).toEqual(ids(all.report).filter((id) => id !== "user.login_shell"));
  });

  it.each([
    [["--layer", "ssh", "--skip", "ssh"]],
    [["--layer", "ssh.password_auth", "--skip", "ssh"]],
    [["--layer", "user.dedicated", "--skip", "user.dedicated"]],
  ])("%j is a usage error", async (args) => {
    const r = await audit(...args);
    expect(r.code).toBe(2);
    expect(r.report).toBeUndefined();
    expect(r.err).toContain("opposite");
  });

  it("refuses an id no check has, and a word that is neither", async () => {
    const unknown = await audit("--layer", "ssh.no_such_check");
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("clawguard checks");
    const neither = await audit("--skip", "firewal");
    expect(neither.code).toBe(2);
    expect(neither.err).toMatch(/--skip.*firewal/);
    expect(neither.err).toContain("firewall");
  });
});

describe("--waivers", () => {
  const write = (text: string) => {
    const file = path.join(tempDir("waivers"), "waivers.yaml");
    writeFileSync(file, text);
    return file;
  };
  const waiver = (check: string, host: string, expires: string) =>
    `  - check: ${check}\n    host: "${host}"\n    reason: accepted for the lab\n    expires: ${expires}\n`;

  it("a waiver in force takes its finding out of the exit code; an expired one does not", async () => {
    const base = await audit("--layer", "user.dedicated");
    expect(base.code).toBe(1);
    const held = await audit(
      "--layer",
      "user.dedicated",
      "--waivers",
      write(`waivers:\n${waiver("user.dedicated", "agent-*", "2999-12-31")}`),
    );
    expect(held.code, held.err).toBe(0);
    expect(held.report!.findings[0]!.waiver).toEqual({
      reason: "accepted for the lab",
      expires: "2999-12-31",
      expired: false,
    });
    const expired = await audit(
      "--layer",
      "user.dedicated",
      "--waivers",
      write(`waivers:\n${waiver("user.dedicated", "*", "2001-01-31")}`),
    );
    expect(expired.code).toBe(1);
    expect(expired.report!.findings[0]!.waiver?.expired).toBe(true);
  });

  it("applies only on hosts its pattern matches", async () => {
    const other = await audit(
      "--layer",
      "user.dedicated",
      "--waivers",
      write(`waivers:\n${waiver("user.dedicated", "db-*", "2999-12-31")}`),
    );
    expect(other.code).toBe(1);
    expect(other.report!.findings[0]!.waiver).toBeUndefined();
  });

  it("the text view lists a waived finding apart, not among those that need attention", async () => {
    const file = write(`waivers:\n${waiver("user.dedicated", "*", "2999-12-31")}`);
    const r = await runCli(["audit", "--root", root, "--layer", "user.dedicated", "--waivers", file]);
    expect(r.out).not.toMatch(/^ {2}FAIL/m);
    expect(r.out).toContain("1 waived");
    expect(r.out).toContain("waived: user.dedicated");
  });

  it("a broken waiver file is refused with its line", async () => {
    const file = write(`waivers:\n  - check: user.dedicated\n    reason: x\n    expires: soon\n`);
    const r = await runCli(["audit", "--root", root, "--waivers", file]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:4`);
  });

  it("matches hosts shell-style and marks only failing, erroring or warning findings", () => {
    expect(hostMatches("web-*", "web-12")).toBe(true);
    expect(hostMatches("web-?", "web-12")).toBe(false);
    expect(hostMatches("a.b", "axb")).toBe(false);
    const w = parseWaivers(`waivers:\n${waiver("x.y", "*", "2030-01-01")}`, "w.yaml");
    const f = (status: Finding["status"]): Finding => ({
      id: "x.y",
      layer: "user",
      severity: "high",
      status,
      title: "t",
      evidence: { source: "", excerpt: "" },
      remediation: "",
      fixable: false,
    });
    const marked = applyWaivers([f("fail"), f("pass"), f("skip")], w, "h", "2030-01-01");
    expect(marked.map((x) => x.waiver?.expired)).toEqual([false, undefined, undefined]);
    expect(applyWaivers([f("fail")], w, "h", "2030-01-02")[0]!.waiver?.expired).toBe(true);
  });
});
