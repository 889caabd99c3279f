/**
 * Policy tests: a YAML list of cases, each naming who asks (an agent, a source address, or every
 * agent) and the destinations that must come out allowed, audited or denied. `shield check
 * --tests FILE` runs them against shield.yaml, or with `--live` against the running shield. The
 * file sits beside shield.yaml in version control, and a CI job fails on any case that no longer
 * holds:
 *
 *   - agent: scout
 *     allowed: [api.openai.com, "https://x.anthropic.com/v1"]
 *     denied: [pastebin.com, "http://169.254.169.254/"]
 *   - all: true
 *     denied: [pastebin.com, x.ngrok.io]
 */
import { z } from "zod";
import { DestinationError, readableDestination, type AgentAnswer, type Asker } from "./check.js";
import { ClawguardError, ConfigError, type ConfigProblem } from "../errors.js";
import { formatKeyPath, parseYamlAs, readConfigText } from "../yaml/read.js";

export const EXPECTATIONS = ["allowed", "audited", "denied"] as const;
export type Expectation = (typeof EXPECTATIONS)[number];

/** At most as many as one admin API check takes. */
const destinations = z.array(z.string().min(1).max(2048)).min(1).max(64);

const caseSchema = z
  .strictObject({
    agent: z.string().min(1).max(128).optional(),
    source: z.string().min(1).max(64).optional(),
    all: z.literal(true).optional(),
    allowed: destinations.optional(),
    audited: destinations.optional(),
    denied: destinations.optional(),
  })
  .superRefine((c, ctx) => {
    if ([c.agent, c.source, c.all].filter((x) => x !== undefined).length !== 1)
      ctx.addIssue({ code: "custom", message: "give exactly one of agent, source or all: true" });
    if (!c.allowed && !c.audited && !c.denied)
      ctx.addIssue({ code: "custom", message: "give destinations under allowed, audited or denied" });
  });

const testsSchema = z.array(caseSchema).min(1);

export type { Asker };

export interface PolicyCase {
  /** 1-based line of the case in its file. */
  line: number | undefined;
  who: Asker;
  expect: Array<{ decision: Expectation; destinations: string[] }>;
}

/** One destination as one agent got it, against what its case expects. */
export interface PolicyOutcome {
  line: number | undefined;
  agent: string;
  destination: string;
  expected: Expectation;
  decision: Expectation;
  rule: string | null;
  reason: string;
  holds: boolean;
}

/** Read and check a tests file: every problem (YAML, schema, destination) with its line. */
export async function loadPolicyTests(file: string): Promise<PolicyCase[]> {
  return parsePolicyTests(await readConfigText(file, "pass --tests PATH"), file);
}

export function parsePolicyTests(text: string, file: string): PolicyCase[] {
  const { data, loc } = parseYamlAs(text, file, testsSchema, {
    list: true,
    reason: "expected a list of cases (- agent: ID, then allowed/audited/denied: [destinations])",
  });
  const problems: ConfigProblem[] = [];
  const cases = data.map((c, i): PolicyCase => {
    const expect: PolicyCase["expect"] = [];
    for (const decision of EXPECTATIONS) {
      const list = c[decision];
      if (!list) continue;
      list.forEach((d, j) => {
        try {
          readableDestination(d);
        } catch (e) {
          if (!(e instanceof DestinationError)) throw e;
          problems.push({
            keyPath: formatKeyPath([i, decision, j]),
            line: loc.line([i, decision, j]),
            reason: e.message,
          });
        }
      });
      expect.push({ decision, destinations: list });
    }
    const who: Asker =
      c.agent !== undefined
        ? { agent: c.agent }
        : c.source !== undefined
          ? { source: c.source }
          : { all: true };
    return { line: loc.line([i]), who, expect };
  });
  if (problems.length > 0) throw new ConfigError(file, problems);
  return cases;
}

/**
 * Run every case: `ask` answers one asker about up to 64 destinations (from the file's config,
 * or from the running shield), one call per case and expected decision.
 */
export async function runPolicyTests(
  file: string,
  cases: readonly PolicyCase[],
  ask: (who: Asker, destinations: string[]) => Promise<AgentAnswer[]>,
): Promise<PolicyOutcome[]> {
  const outcomes: PolicyOutcome[] = [];
  for (const c of cases) {
    for (const { decision: expected, destinations: given } of c.expect) {
      let answers: AgentAnswer[];
      try {
        answers = await ask(c.who, given);
      } catch (e) {
        // An agent the config no longer has, say: the case cannot be run, which is not a pass.
        if (!(e instanceof ClawguardError)) throw e;
        const where = c.line !== undefined ? `${file}:${c.line}` : file;
        throw new ClawguardError(e.code, e.message, { where, hint: e.hint, cause: e });
      }
      for (const answer of answers) {
        for (const r of answer.results) {
          outcomes.push({
            line: c.line,
            agent: answer.agent.id,
            destination: r.destination,
            expected,
            decision: r.decision,
            rule: r.rule,
            reason: r.reason,
            holds: r.decision === expected,
          });
        }
      }
    }
  }
  return outcomes;
}
