import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { gatherFacts, runAudit, type FactSet } from "../../src/audit/audit.js";
import { LAYERS } from "../../src/checks/finding.js";
import { judge } from "../../src/checks/judge.js";
import { FactContext } from "../../src/host/context.js";
import { LocalHost } from "../../src/host/host.js";
import { loadFixture } from "../helpers/fixture.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");

/** Where a value is not what JSON carries as it is: Maps, Sets, class instances, functions, NaN. */
function notPlain(v: unknown, at: string): string[] {
  if (v === null || v === undefined || typeof v === "string" || typeof v === "boolean") return [];
  if (typeof v === "number") return Number.isFinite(v) ? [] : [`${at} is ${v}`];
  if (Array.isArray(v))
    return v.flatMap((x, i) => (x === undefined ? [`${at}[${i}] is undefined`] : notPlain(x, `${at}[${i}]`)));
  if (typeof v === "object") {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null)
      return [
        `${at} is a ${(v as { constructor?: { name?: string } }).constructor?.name ?? "class instance"}`,
      ];
    return Object.entries(v).flatMap(([k, x]) => notPlain(x, `${at}.${k}`));
  }
  return [`${at} is a ${typeof v}`];
}

describe("facts gathered on one system, judged anywhere", () => {
  // Every fixture: each one leaves different facts in their ok, error and skip shapes.
  for (const name of readdirSync(FIXTURES).sort()) {
    it(`${name}: the facts are plain data, and judged after a JSON round trip they give the audit's findings`, async () => {
      const host = new LocalHost(loadFixture(name), { isRoot: false });
      const context = new FactContext(host);
      const report = await runAudit(host, { context });
      // The same context: the very facts the audit judged, not a second reading.
      const set = await gatherFacts(context, LAYERS);
      expect(Object.keys(set.facts).sort()).toEqual(
        expect.arrayContaining(["openclaw", "packages", "sshd", "ufw", "fail2ban", "apt"]),
      );
      expect(notPlain(set, "$")).toEqual([]);
      const copy = JSON.parse(JSON.stringify(set)) as FactSet;
      expect(judge(copy.facts, LAYERS)).toStrictEqual(report.findings);
    }, 60_000);
  }

  it("refuses to judge a layer whose facts were not gathered, naming them", async () => {
    const host = new LocalHost(loadFixture("ssh-pass"), { isRoot: false });
    const set = await gatherFacts(new FactContext(host), ["ssh"]);
    expect(Object.keys(set.facts)).toEqual(["sshd", "banners"]);
    expect(() => judge(set.facts, ["ssh", "tmp"])).toThrow(
      /the tmp checks need facts that were not gathered: tmp, apt/,
    );
  });
});
