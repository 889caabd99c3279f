/**
 * Warnings about valid configs: rules that open what the address checks close, rules a deny
 * always beats, agents that can reach nothing, unused tiers and fleets, shared tokens, and a
 * mode other than enforce. A config without any of these draws none.
 */
import { describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../src/shield/config.js";
import { covers, lintShieldConfig, type LintWarning } from "../../src/shield/policy/lint.js";
import { parseRule } from "../../src/shield/policy/rules.js";
import { EXAMPLE } from "./policy-fixtures.js";
import { sha256 } from "./proxy-harness.js";

const HEAD = "listen: 127.0.0.1:3128\nlog: { path: ./shield.db }\n";
const lint = (yaml: string): Array<Pick<LintWarning, "code" | "key">> =>
  lintShieldConfig(parseShieldConfig(HEAD + yaml, "shield.yaml")).map(({ code, key }) => ({ code, key }));

describe("shield.yaml warnings", () => {
  it("none for the example config", () => {
    expect(lintShieldConfig(parseShieldConfig(EXAMPLE, "shield.yaml"))).toEqual([]);
  });

  it("name allow rules that open metadata, loopback, every address or every destination", () => {
    expect(
      lint(`
allow: ["0.0.0.0/0", "[::/0]:443"]
agents:
  - id: a
    sources: [127.0.0.2/32]
    allow: [169.254.169.254, "[fd00:ec2::/32]", 127.0.0.1, "10.0.0.0/8", "*:443", "0.0.0.0/7", "[::/127]"]
`),
    ).toEqual([
      { code: "this-host", key: "allow[0]" },
      { code: "all-addresses-open", key: "allow[0]" },
      { code: "this-host", key: "allow[1]" },
      { code: "all-addresses-open", key: "allow[1]" },
      { code: "metadata-open", key: "agents[0].allow[0]" },
      { code: "metadata-open", key: "agents[0].allow[1]" },
      { code: "loopback-open", key: "agents[0].allow[2]" },
      { code: "allow-everything", key: "agents[0].allow[4]" },
      { code: "this-host", key: "agents[0].allow[5]" },
      { code: "this-host", key: "agents[0].allow[6]" },
    ]);
  });

  it("name allow rules a deny that applies to the same agents always beats", () => {
    expect(
      lint(`
deny: [pastebin.com, "*.ngrok.io", "10.0.0.0/8:22"]
allow: ["*.ngrok.io"]
tiers:
  crew: { allow: [pastebin.com, "a.ngrok.io:443", "b.example.com", "*.ngrok.io.example"], deny: ["*.example.com"] }
fleets:
  acme: { isolation: isolated, deny: [api.github.com:443] }
agents:
  - { id: a, tier: crew, fleet: acme, sources: [127.0.0.2/32], allow: [api.github.com:443, api.github.com, "10.1.0.0/16:22", "10.1.0.0/16"] }
`),
    ).toEqual([
      { code: "never-applies", key: "allow[0]" },
      { code: "never-applies", key: "tiers.crew.allow[0]" },
      { code: "never-applies", key: "tiers.crew.allow[1]" },
      { code: "never-applies", key: "tiers.crew.allow[2]" },
      { code: "never-applies", key: "agents[0].allow[0]" },
      { code: "never-applies", key: "agents[0].allow[2]" },
    ]);
  });

  it("name agents no allow rule reaches, unused tiers and fleets, shared tokens and the mode", () => {
    const token = sha256("shared");
    expect(
      lint(`
mode: audit
tiers:
  spare: { allow: [a.test] }
fleets:
  empty: { isolation: isolated }
  crew: { isolation: fleet }
agents:
  - { id: a, token_sha256: "${token}" }
  - { id: b, token_sha256: "${token}", fleet: crew }
  - { id: c, sources: [127.0.0.3/32], fleet: crew }
`),
    ).toEqual([
      { code: "reaches-nothing", key: "agents[0]" },
      { code: "unused", key: "tiers.spare" },
      { code: "unused", key: "fleets.empty" },
      { code: "shared-token", key: "agents[1].token_sha256" },
      { code: "mode", key: "mode" },
    ]);
  });
});

describe("a deny covers an allow", () => {
  const cases: Array<[string, string, boolean]> = [
    ["*", "anything.test:8080", true],
    ["*:443", "a.test", false],
    ["*:443", "a.test:443", true],
    ["a.test", "a.test:443", true],
    ["a.test:443", "a.test", false],
    ["*.a.test", "x.y.a.test", true],
    ["*.a.test", "a.test", false],
    ["*.a.test", "*.a.test:443", true],
    ["*.a.test", "*.x.a.test", true],
    ["*.x.a.test", "*.a.test", false],
    ["*.a.test", "ba.test", false],
    ["10.0.0.0/8", "10.2.0.0/16", true],
    ["10.2.0.0/16", "10.0.0.0/8", false],
    ["10.0.0.0/8", "11.0.0.0/16", false],
    ["10.0.0.0/8", "10.1.2.3", true],
    ["[2001:db8::/32]", "[2001:db8:1::/48]", true],
    ["10.0.0.0/8", "a.test", false],
  ];
  for (const [deny, allow, expected] of cases)
    it(`${deny} ${expected ? "covers" : "does not cover"} ${allow}`, () =>
      expect(covers(parseRule(deny), parseRule(allow))).toBe(expected));
});
