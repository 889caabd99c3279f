import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { renderShieldConfigSkeleton } from "../../src/render/shield-unit.js";
import { editRulesText, listRules, type RuleEdit } from "../../src/shield/admin/rules-file.js";
import { parseShieldConfig } from "../../src/shield/config.js";

const HASH = createHash("sha256").update("scout-password").digest("hex");

/** The commented skeleton `shield install` writes, filled in as an operator would: both styles. */
const FILLED = renderShieldConfigSkeleton({ configDir: "/etc/clawguard" })
  .replace(
    "tiers: {}\n",
    "tiers:\n  crew: { allow: [web.test] }  # the crew\n  ops:\n    allow:\n      - a.test # first\n    # ops ends here\n",
  )
  .replace(
    "agents: []\n",
    `agents:\n  - { id: scout, tier: crew, token_sha256: "${HASH}" } # the scout\n  - id: rover\n    tier: crew\n    sources: [203.0.113.7/32]\n`,
  );

const EDITS: RuleEdit[] = [
  { level: "global", verdict: "allow", rule: "*.x.test" },
  { level: "tier", name: "crew", verdict: "allow", rule: "y.test" },
  { level: "tier", name: "ops", verdict: "allow", rule: "b.test" },
  { level: "tier", name: "ops", verdict: "deny", rule: "d.test" },
  { level: "agent", name: "scout", verdict: "deny", rule: "z.test" },
  { level: "agent", name: "rover", verdict: "allow", rule: "r.test:443" },
];

const addAll = () => EDITS.reduce((t, e) => editRulesText(t, e, "add"), FILLED);

describe("shield rules add and remove keep the file's layout", () => {
  it("the filled skeleton is a valid config to start from", () => {
    expect(() => parseShieldConfig(FILLED, "shield.yaml")).not.toThrow();
  });

  it("adds each rule in the style around it and leaves every other line as it was", () => {
    const added = addAll();
    const cfg = parseShieldConfig(added, "shield.yaml");
    const levels = listRules(cfg);
    for (const e of EDITS) {
      const level = levels.find((l) => l.level === e.level && (l.name ?? undefined) === e.name);
      expect(level?.[e.verdict], JSON.stringify(e)).toContain(e.rule);
    }
    const lines = added.split("\n");
    // Flow maps stay flow maps, flow lists flow lists, block lists block lists; comments stay put.
    expect(lines).toContain('allow: ["*.x.test"]');
    expect(lines).toContain("  crew: { allow: [web.test, y.test] }  # the crew");
    expect(added).toContain(
      "    allow:\n      - a.test # first\n      - b.test\n    deny: [d.test]\n    # ops ends here\n",
    );
    expect(lines).toContain(
      `  - { id: scout, tier: crew, token_sha256: "${HASH}", deny: [ z.test ] } # the scout`,
    );
    expect(added).toContain("    sources: [203.0.113.7/32]\n    allow: [r.test:443]\n#  - id: scout\n");
    // Apart from the lines that carry a new rule, the file is line for line the one it was.
    const touched = (l: string) => EDITS.some((e) => l.includes(e.rule.replace(/^\*/, "")));
    const was = FILLED.split("\n").filter((l) => !/^allow: \[\]$|^ {2}crew: \{|^ {2}- \{ id: scout/.test(l));
    expect(lines.filter((l) => !touched(l))).toEqual(was);
  });

  it("removing what was added gives back the same bytes", () => {
    const back = [...EDITS].reverse().reduce((t, e) => editRulesText(t, e, "remove"), addAll());
    expect(back).toBe(FILLED);
  });

  it("removes from the middle of a list without touching its neighbours", () => {
    const three = ["p.test", "q.test"].reduce(
      (t, rule) => editRulesText(t, { level: "tier", name: "crew", verdict: "allow", rule }, "add"),
      FILLED,
    );
    expect(three).toContain("crew: { allow: [web.test, p.test, q.test] }  # the crew");
    const two = editRulesText(
      three,
      { level: "tier", name: "crew", verdict: "allow", rule: "p.test" },
      "remove",
    );
    expect(two).toContain("crew: { allow: [web.test, q.test] }  # the crew");
    const blockTwo = editRulesText(
      FILLED,
      { level: "tier", name: "ops", verdict: "allow", rule: "b.test" },
      "add",
    );
    const blockOne = editRulesText(
      blockTwo,
      { level: "tier", name: "ops", verdict: "allow", rule: "a.test" },
      "remove",
    );
    expect(blockOne).toContain("    allow:\n      - b.test\n    # ops ends here\n");
  });
});
