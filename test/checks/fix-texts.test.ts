/**
 * Every fix the audit prints for the fixtures is one a person can type as it stands: each
 * `clawguard ...` in it parses against the real command line, each systemctl names the unit
 * the facts found (not the name OpenClaw's docs use), none changes root's account, and none
 * points at lines "shown" or "above" that a report need not show there.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { gatherFacts } from "../../src/audit/audit.js";
import { catalogEntries } from "../../src/checks/catalog.js";
import { LAYERS, type Finding } from "../../src/checks/finding.js";
import { LAYER_CHECKS } from "../../src/checks/index.js";
import { judge } from "../../src/checks/judge.js";
import { FactContext } from "../../src/host/context.js";
import { LocalHost } from "../../src/host/host.js";
import { parseCommandLine, shellWords } from "../helpers/cli-parse.js";
import { loadFixture } from "../helpers/fixture.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");
const ROOT_TREES = readdirSync(FIXTURES).filter((n) =>
  statSync(path.join(FIXTURES, n, "etc"), { throwIfNoEntry: false })?.isDirectory(),
);

interface Produced {
  fixture: string;
  finding: Finding;
  units: Set<string>;
}

const produced: Produced[] = [];

beforeAll(async () => {
  for (const name of ROOT_TREES)
    for (const isRoot of [false, true]) {
      const ctx = new FactContext(new LocalHost(loadFixture(name), { isRoot }));
      const set = await gatherFacts(ctx, LAYERS);
      const oc = set.facts.openclaw;
      const units = new Set(oc?.status === "ok" ? oc.value.units.map((u) => u.name) : []);
      for (const finding of judge(set.facts, LAYERS)) produced.push({ fixture: name, finding, units });
    }
}, 120_000);

const shown = (p: Produced) => `${p.fixture} ${p.finding.id}: ${p.finding.remediation}`;

/** Each `clawguard ...` in a text, up to where prose or the next command starts. */
export function clawguardCommands(text: string): string[][] {
  return [...text.matchAll(/(?:^|[\s(`:])clawguard\s+([^;&|()#,`\n]+)/g)].map((m) =>
    shellWords(m[1]!.trim()),
  );
}

/** Units that systemctl or systemd-analyze is told to act on. */
function unitsNamed(text: string): string[] {
  const out: string[] = [];
  const verbs = "edit|restart|reload|enable|disable|start|stop|status|cat|mask";
  const re = new RegExp(
    `systemctl((?:\\s+--?[\\w=@.-]+)*)\\s+(?:${verbs})((?:\\s+--?[\\w=@.-]+)*)((?:\\s+[\\w@.:-]+)+)`,
    "g",
  );
  for (const m of text.matchAll(re)) out.push(...m[3]!.trim().split(/\s+/));
  for (const m of text.matchAll(/systemd-analyze security(?:\s+--[\w=-]+)*\s+([\w@.:-]+)/g)) out.push(m[1]!);
  return out.map((u) => (/\.\w+$/.test(u) ? u : `${u}.service`));
}

describe("the fixes the fixtures produce", () => {
  it("are many, so the checks below have something to check", () => {
    const fixes = produced.filter((p) => p.finding.remediation !== "");
    expect(fixes.length).toBeGreaterThan(100);
    expect(fixes.some((p) => clawguardCommands(p.finding.remediation).length > 0)).toBe(true);
    expect(fixes.some((p) => unitsNamed(p.finding.remediation).some((u) => u.includes("openclaw")))).toBe(
      true,
    );
  });

  it("name clawguard commands and flags that exist", async () => {
    const bad: string[] = [];
    for (const p of produced)
      for (const words of clawguardCommands(p.finding.remediation)) {
        const r = await parseCommandLine(words);
        if (!r.ok) bad.push(`${shown(p)}\n    clawguard ${words.join(" ")}: ${r.error}`);
      }
    expect(bad).toEqual([]);
  });

  it("name the gateway's unit as the facts found it", () => {
    const bad = produced.flatMap((p) =>
      unitsNamed(p.finding.remediation)
        .filter((u) => u.includes("openclaw") && !p.units.has(u))
        .map((u) => `${shown(p)}\n    ${u} is not one of: ${[...p.units].join(", ")}`),
    );
    expect(bad).toEqual([]);
  });

  it("never change root's account", () => {
    const rootAccount = /\b(usermod|userdel|chsh|passwd|gpasswd\s+-d)\b[^;&|]*\sroot\b/;
    expect(produced.filter((p) => rootAccount.test(p.finding.remediation)).map(shown)).toEqual([]);
  });

  it("never point at something shown elsewhere", () => {
    const elsewhere = /\b(shown|above|below)\b/;
    expect(produced.filter((p) => elsewhere.test(p.finding.remediation)).map(shown)).toEqual([]);
  });
});

describe("the fixes the catalog lists (clawguard checks)", () => {
  void LAYER_CHECKS;
  const entries = catalogEntries();

  it("parse as clawguard command lines", async () => {
    const bad: string[] = [];
    for (const e of entries)
      for (const words of clawguardCommands(e.remediation)) {
        const r = await parseCommandLine(words);
        if (!r.ok) bad.push(`${e.id}: clawguard ${words.join(" ")}: ${r.error}`);
      }
    expect(entries.length).toBeGreaterThan(50);
    expect(bad).toEqual([]);
  });

  it("leave the gateway's unit as UNIT, since only the facts know its name", () => {
    const guessed = entries.filter((e) => unitsNamed(e.remediation).some((u) => u.includes("openclaw")));
    expect(guessed.map((e) => `${e.id}: ${e.remediation}`)).toEqual([]);
  });

  it("never point at something shown elsewhere", () => {
    const elsewhere = /\b(shown|above|below)\b/;
    expect(
      entries.filter((e) => elsewhere.test(e.remediation)).map((e) => `${e.id}: ${e.remediation}`),
    ).toEqual([]);
  });
});

describe("evidence", () => {
  it("does not begin by restating the path it names as its source", () => {
    const repeats = produced.filter((p) => {
      const { source, excerpt } = p.finding.evidence;
      return source
        .split(", ")
        .map((s) => s.replace(/(:\d+| line \d+)$/, ""))
        .some((s) => s.startsWith("/") && excerpt.startsWith(s) && !/[\w./-]/.test(excerpt[s.length] ?? ""));
    });
    const shown = (p: Produced) =>
      `${p.finding.id}: ${p.finding.evidence.source} | ${p.finding.evidence.excerpt}`;
    expect([...new Set(repeats.map(shown))]).toEqual([]);
  });
});
