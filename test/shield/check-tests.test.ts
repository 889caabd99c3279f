import { describe, expect, it } from "vitest";
import { ClawguardError, ConfigError } from "../../src/errors.js";
import { CheckAgentError } from "../../src/shield/check.js";
import { parsePolicyTests, runPolicyTests } from "../../src/shield/check-tests.js";

const TESTS = `- agent: scout
  denied: [pastebin.com]
- agent: rover
  allowed: [api.openai.com]
  alowed: [x.test]
`;

describe("a policy tests file", () => {
  it("is refused naming the file, the line and the key of its problem", () => {
    const err = (() => {
      try {
        parsePolicyTests(TESTS, "policy-tests.yaml");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).where).toBe("policy-tests.yaml:5");
    expect((err as ConfigError).message).toBe('policy-tests.yaml:5: [1].alowed: unknown key "alowed"');
  });

  it("names the case that cannot be run, and keeps the code of why", async () => {
    const cases = parsePolicyTests(TESTS.replace("  alowed: [x.test]\n", ""), "policy-tests.yaml");
    const err = await runPolicyTests("policy-tests.yaml", cases, async (who) => {
      if ("agent" in who && who.agent === "rover") throw new CheckAgentError("agent", 'no agent "rover"');
      return [];
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClawguardError);
    expect((err as ClawguardError).code).toBe("CG_AGENT_UNKNOWN");
    expect((err as ClawguardError).message).toBe('policy-tests.yaml:3: no agent "rover"');
  });

  it("lets a bug in the asking through as it is", async () => {
    const cases = parsePolicyTests("- agent: scout\n  denied: [pastebin.com]\n", "t.yaml");
    const bug = new TypeError("x is not a function");
    await expect(
      runPolicyTests("t.yaml", cases, async () => {
        throw bug;
      }),
    ).rejects.toBe(bug);
  });
});
