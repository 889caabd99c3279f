/**
 * Titles say the goal in one voice. A check's title states what must hold, in the present
 * tense ("The gateway listens on loopback only"), and every finding of the check carries that
 * same title on every system; what one finding found is its detail. The voice is held to rules
 * simple enough to state:
 *
 * - no trailing period, question mark, exclamation mark or colon;
 * - no leading digit (a count belongs to a finding, not to a goal), nor "No check";
 * - the title, each clause after "; " and each parenthesis do not start with an imperative verb;
 * - no past or conditional auxiliary (was, were, did, had, could, would, ran), and no word of
 *   failure (lacks, missing, unexpectedly).
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { gatherFacts } from "../../src/audit/audit.js";
import { catalogEntries } from "../../src/checks/catalog.js";
import { LAYERS, type Finding } from "../../src/checks/finding.js";
import { judge } from "../../src/checks/judge.js";
import { FactContext } from "../../src/host/context.js";
import { LocalHost } from "../../src/host/host.js";
import { loadFixture } from "../helpers/fixture.js";

const IMPERATIVES = new Set(
  (
    "add allow avoid block change check close configure deny disable do don't drop enable ensure " +
    "fix harden install keep limit make mount move open reach remove require restart restrict " +
    "rotate run set start stop turn uninstall update upgrade use verify"
  ).split(" "),
);
const NOT_PRESENT = /\b(was|were|did|had|could|would|ran|lacks|missing|unexpectedly)\b/i;

/** What keeps a title from stating a goal in the present tense; empty when it does. */
export function voiceProblems(title: string): string[] {
  const out: string[] = [];
  if (title.trim() !== title || title === "") out.push("empty, or spaces around it");
  if (/[.?!:]$/.test(title)) out.push("ends in punctuation");
  if (/^\d/.test(title)) out.push("starts with a digit");
  if (/^no check\b/i.test(title)) out.push('starts with "No check"');
  const starts = [
    title,
    ...title.split("; ").slice(1),
    ...[...title.matchAll(/\(([^)]*)\)/g)].map((m) => m[1]!),
  ];
  for (const s of starts) {
    const first = (/^[\w']+/.exec(s.trim())?.[0] ?? "").toLowerCase();
    if (IMPERATIVES.has(first)) out.push(`"${s}" starts with the command "${first}"`);
  }
  const tense = NOT_PRESENT.exec(title);
  if (tense) out.push(`says "${tense[0]}": not a present goal`);
  return out;
}

describe("the voice rules", () => {
  it("refuse commands, questions, counts, failures and past tenses", () => {
    for (const bad of [
      "Enable ufw",
      "Is ufw enabled?",
      "ufw is enabled.",
      "3 secret paths are open to every user",
      "No check ran",
      "The port is closed (reach it through ssh -L instead)",
      "ufw is on; install fail2ban",
      "The secret walk could be finished",
      "Unattended upgrades ran lately",
      "The unit lacks ProtectSystem=strict",
      "The ssh checks failed unexpectedly",
    ])
      expect(voiceProblems(bad), bad).not.toEqual([]);
  });

  it("accept a goal stated as what holds", () => {
    for (const good of [
      "The gateway listens on loopback only",
      "No secret file or dir is accessible to every user",
      "ufw is enabled",
      "SSH agent forwarding is off (a compromised server cannot use your agent)",
    ])
      expect(voiceProblems(good), good).toEqual([]);
  });
});

describe("catalog titles", () => {
  it("each state a goal in the present tense", () => {
    const entries = catalogEntries();
    expect(entries.length).toBeGreaterThan(50);
    const off = entries
      .map((e) => [e.id, e.title, voiceProblems(e.title)] as const)
      .filter(([, , p]) => p.length);
    expect(off).toEqual([]);
  });
});

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");
const ROOT_TREES = readdirSync(FIXTURES).filter((n) =>
  statSync(path.join(FIXTURES, n, "etc"), { throwIfNoEntry: false })?.isDirectory(),
);

describe("findings of the whole-system fixtures", () => {
  const produced: Array<{ fixture: string; finding: Finding }> = [];

  beforeAll(async () => {
    for (const name of ROOT_TREES)
      for (const isRoot of [false, true]) {
        const set = await gatherFacts(new FactContext(new LocalHost(loadFixture(name), { isRoot })), LAYERS);
        for (const finding of judge(set.facts, LAYERS)) produced.push({ fixture: name, finding });
      }
  }, 120_000);

  it("carry their check's catalog title, whatever they found", () => {
    const title = new Map(catalogEntries().map((e) => [e.id, e.title]));
    const catalogued = produced.filter((p) => title.has(p.finding.id));
    // Failures and warnings are the findings that once had titles of their own.
    expect(catalogued.filter((p) => p.finding.status === "fail" && p.finding.detail).length).toBeGreaterThan(
      10,
    );
    const off = catalogued
      .filter((p) => p.finding.title !== title.get(p.finding.id))
      .map((p) => `${p.fixture} ${p.finding.id}: ${p.finding.title}`);
    expect(off).toEqual([]);
  });

  it("outside the catalog, only OpenClaw's own checks, titled in the same voice", () => {
    const ids = new Set(catalogEntries().map((e) => e.id));
    for (const { fixture, finding } of produced.filter((p) => !ids.has(p.finding.id))) {
      expect(finding.id, fixture).toMatch(/^openclaw\./);
      expect(voiceProblems(finding.title), finding.title).toEqual([]);
    }
  });

  it("say in a detail something other than their title", () => {
    const same = produced.filter((p) => p.finding.detail === p.finding.title).map((p) => p.finding.id);
    expect(same).toEqual([]);
  });
});
