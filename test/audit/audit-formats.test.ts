/**
 * The formats a security team plugs into other tools: SARIF 2.1.0 that its published schema
 * accepts, and JUnit XML that is well formed and counts what the audit found.
 */
import { createRequire } from "node:module";
import Ajv from "ajv";
import { beforeAll, describe, expect, it } from "vitest";
import type { AuditReport } from "../../src/audit/audit.js";
import { evidenceLocation } from "../../src/render/audit-sarif.js";
import { loadFixture } from "../helpers/fixture.js";
import { runCli } from "../helpers/run-cli.js";

const require = createRequire(import.meta.url);

interface SarifResult {
  ruleId: string;
  message: { text: string };
  kind: string;
  level: string;
  locations?: Array<{
    physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number } };
  }>;
}

let root: string;
let report: AuditReport;

beforeAll(async () => {
  root = loadFixture("openclaw-careless");
  report = JSON.parse(
    (await runCli(["audit", "--root", root, "--skip", "openclaw", "--json"])).out,
  ) as AuditReport;
}, 60_000);

describe("--format sarif", () => {
  const validator = () => {
    const ajv = new Ajv({ schemaId: "id", allErrors: true });
    ajv.addMetaSchema(require("ajv/lib/refs/json-schema-draft-04.json") as object);
    return ajv.compile(require("@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json") as object);
  };

  it("is valid against the SARIF 2.1.0 schema, with a result per finding", async () => {
    const r = await runCli(["audit", "--root", root, "--skip", "openclaw", "--format", "sarif"]);
    expect(r.code).toBe(1);
    const log = JSON.parse(r.out) as { version: string; runs: Array<{ results: SarifResult[] }> };
    const validate = validator();
    expect(validate(log), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(log.version).toBe("2.1.0");
    const results = log.runs[0]!.results;
    expect(results.length).toBe(report.findings.length);
    expect(results.filter((x) => x.kind === "fail").length).toBe(
      report.findings.filter((f) => f.status === "fail" || f.status === "warn").length,
    );
    expect(results.filter((x) => x.level === "error").length).toBe(
      report.findings.filter(
        (f) => f.status === "fail" && (f.severity === "critical" || f.severity === "high"),
      ).length,
    );
    expect(results.some((x) => x.locations?.[0]?.physicalLocation.region?.startLine)).toBe(true);
  });

  it("names each rule by its check's goal and says in each result what the finding found", async () => {
    const r = await runCli(["audit", "--root", root, "--skip", "openclaw", "--format", "sarif"]);
    const run = (
      JSON.parse(r.out) as {
        runs: Array<{
          results: SarifResult[];
          tool: { driver: { rules: Array<{ id: string; shortDescription: { text: string } }> } };
        }>;
      }
    ).runs[0]!;
    const rule = new Map(run.tool.driver.rules.map((x) => [x.id, x.shortDescription.text]));
    const detailed = report.findings.filter((f) => f.detail);
    expect(detailed.length).toBeGreaterThan(0);
    report.findings.forEach((f, i) => {
      expect(rule.get(f.id)).toBe(f.title);
      const text = run.results[i]!.message.text.split("\n");
      expect(text[0]).toBe(f.title);
      if (f.detail) expect(text[1]).toBe(f.detail);
    });
  });

  it("the schema refuses a log that breaks it, so the check above can fail", () => {
    const validate = validator();
    expect(validate({ version: "2.1.0", runs: [{ tool: { driver: {} }, results: [] }] })).toBe(false);
    expect(validate({ version: "2.0.0", runs: [] })).toBe(false);
  });

  it("takes a file and its line from the evidence's source", () => {
    expect(evidenceLocation("/etc/ssh/sshd_config line 5")).toEqual({
      path: "/etc/ssh/sshd_config",
      line: 5,
    });
    expect(evidenceLocation("/etc/sudoers.d/agent:3, /etc/sudoers:9")).toEqual({
      path: "/etc/sudoers.d/agent",
      line: 3,
    });
    expect(evidenceLocation("/etc/passwd")).toEqual({ path: "/etc/passwd" });
    expect(evidenceLocation("sshd -T")).toBeUndefined();
  });
});

/** Elements of a small XML document, checked for balance; throws on anything not well formed. */
function xmlElements(xml: string): Array<{ name: string; attrs: Record<string, string> }> {
  const body = xml.replace(/^<\?xml [^?]*\?>\s*/, "");
  const out: Array<{ name: string; attrs: Record<string, string> }> = [];
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w-]*)((?:\s+[\w-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const between = body.slice(last, m.index);
    if (/[<>]/.test(between)) throw new Error(`stray markup: ${between.slice(0, 80)}`);
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(between))
      throw new Error(`bad entity: ${between.slice(0, 80)}`);
    last = tag.lastIndex;
    const [, close, name, rawAttrs, selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
      continue;
    }
    const attrs = Object.fromEntries(
      [...rawAttrs!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]),
    );
    out.push({ name: name!, attrs });
    if (!selfClose) stack.push(name!);
  }
  if (stack.length) throw new Error(`unclosed <${stack.at(-1)}>`);
  if (body.slice(last).trim()) throw new Error("text after the root element");
  return out;
}

describe("--format junit", () => {
  it("is well-formed XML with a suite per layer and a case per check, failures counted", async () => {
    const r = await runCli(["audit", "--root", root, "--skip", "openclaw", "--format", "junit"]);
    expect(r.code).toBe(1);
    expect(r.out.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
    const els = xmlElements(r.out);
    const suites = els.filter((e) => e.name === "testsuite");
    expect(suites.map((s) => s.attrs.name)).toEqual(
      report.layers.filter((l) => report.findings.some((f) => f.layer === l)),
    );
    expect(els.filter((e) => e.name === "testcase").length).toBe(report.findings.length);
    const fails = report.findings.filter((f) => f.status === "fail").length;
    expect(els.filter((e) => e.name === "failure").length).toBe(fails);
    expect(els[0]!.attrs.failures).toBe(String(fails));
    expect(els.filter((e) => e.name === "error").length).toBe(
      report.findings.filter((f) => f.status === "error").length,
    );
    expect(els.filter((e) => e.name === "skipped").length).toBe(
      report.findings.filter((f) => f.status === "skip").length,
    );
  });

  it("names a case by its check's goal, and a failure by what the finding found", async () => {
    const r = await runCli(["audit", "--root", root, "--skip", "openclaw", "--format", "junit"]);
    const els = xmlElements(r.out);
    const cases = els.filter((e) => e.name === "testcase").map((e) => e.attrs.name);
    expect(cases).toEqual(
      report.layers
        .flatMap((l) => report.findings.filter((f) => f.layer === l))
        .map((f) => `${f.id}: ${f.title}`),
    );
    const failing = report.layers.flatMap((l) =>
      report.findings.filter((f) => f.layer === l && f.status === "fail"),
    );
    expect(failing.some((f) => f.detail)).toBe(true);
    expect(els.filter((e) => e.name === "failure").map((e) => e.attrs.message)).toEqual(
      failing.map((f) => f.detail ?? f.title),
    );
  });

  it("the well-formedness check refuses broken XML", () => {
    expect(() => xmlElements("<a><b></a></b>")).toThrow();
    expect(() => xmlElements('<a x="1">a & b</a>')).toThrow();
    expect(xmlElements('<a x="1">a &amp; b<b/></a>').map((e) => e.name)).toEqual(["a", "b"]);
  });

  it("--json and another --format together are a usage error", async () => {
    const r = await runCli(["audit", "--root", root, "--json", "--format", "sarif"]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
  });
});
