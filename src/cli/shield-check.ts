import { existsSync } from "node:fs";
import type { Command } from "commander";
import pc from "picocolors";
import {
  checker,
  checkEveryAgent,
  compilePolicy,
  effectiveConfig,
  policyChecker,
  parseDestination,
  readableDestination,
  ruleCount,
  type AgentAnswer,
  type CheckResult,
  type Destination,
} from "../shield/check.js";
import { loadPolicyTests, runPolicyTests, type Asker, type PolicyOutcome } from "../shield/check-tests.js";
import { loadShieldConfig } from "../shield/config.js";
import type { Agent, Mode } from "../shield/types.js";
import { lintShieldConfig } from "../shield/policy/lint.js";
import { systemResolver } from "../shield/net/resolve.js";
import { wantColor } from "./report.js";
import { call } from "./shield-admin.js";
import { authority } from "./shield-log.js";

interface CheckFlags {
  config?: string;
  agent?: string;
  source?: string;
  allAgents?: boolean;
  resolve?: boolean;
  strict?: boolean;
  json?: boolean;
  live?: boolean;
  expect?: string;
  tests?: string;
  admin?: string;
  tokenFile?: string;
}

const DEFAULT_CONFIG = "/etc/clawguard/shield.yaml";
const SCHEMA = "clawguard.shield-check/v1";
const DECISIONS = ["allowed", "audited", "denied"] as const;
type Expected = (typeof DECISIONS)[number];

/** `--expect`, checked before anything is asked. */
function expected(flags: CheckFlags): Expected | undefined {
  if (flags.expect === undefined) return undefined;
  if (!(DECISIONS as readonly string[]).includes(flags.expect))
    throw new Error(`--expect must be one of ${DECISIONS.join(", ")}, not "${flags.expect}"`);
  return flags.expect as Expected;
}

/** Whether a result fails: with `--expect`, decided otherwise; without, denied. */
function fails(r: CheckResult, expect: Expected | undefined): boolean {
  return expect === undefined ? r.decision === "denied" : r.decision !== expect;
}

/** The destinations that fail. The exit code is 1 when there is any. */
function unexpected(results: CheckResult[], expect: Expected | undefined): string[] {
  return results.filter((r) => fails(r, expect)).map((r) => r.destination);
}

/** Exactly one of --agent, --source and --all-agents. */
function oneAsker(flags: CheckFlags): void {
  const n = [flags.agent, flags.source, flags.allAgents].filter((x) => x !== undefined).length;
  if (n !== 1) throw new Error("pass exactly one of --agent ID, --source ADDRESS or --all-agents");
}

/**
 * `--all-agents`: one row per agent, one column per destination, and the failures: with
 * `--expect`, each (agent, destination) decided otherwise; without, each denial.
 */
function everyAgentOutput(
  answers: AgentAnswer[],
  given: string[],
  expect: Expected | undefined,
  color: boolean,
): { text: string; failed: Array<{ agent: string; destination: string; decision: string }> } {
  const c = pc.createColors(color);
  const failed: Array<{ agent: string; destination: string; decision: string }> = [];
  const rows: string[][] = [["AGENT", "MODE", ...given]];
  for (const a of answers) {
    rows.push([
      a.agent.id,
      a.mode,
      ...a.results.map((r) => {
        if (!fails(r, expect)) return r.decision;
        failed.push({ agent: a.agent.id, destination: r.destination, decision: r.decision });
        return expect === undefined ? r.decision : `${r.decision}!`;
      }),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const paint = (cell: string, i: number) => {
    const padded = cell.padEnd(widths[i]!);
    if (i < 2) return padded;
    if (cell.endsWith("!")) return c.red(c.bold(padded));
    return cell.startsWith("allowed")
      ? c.green(padded)
      : cell.startsWith("denied")
        ? c.red(padded)
        : c.yellow(padded);
  };
  let text =
    rows
      .map((r, n) =>
        r
          .map((cell, i) => (n === 0 ? cell.padEnd(widths[i]!) : paint(cell, i)))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n";
  if (expect !== undefined)
    text +=
      failed.length === 0
        ? `every agent: ${expect}, as expected\n`
        : `! not ${expect} as expected: ${failed.length}\n`;
  return { text, failed };
}

/** One line per destination: decision, where it goes, the rule, the reason and the address. */
export function formatCheck(r: CheckResult, color = false): string {
  const c = pc.createColors(color);
  const paint = r.decision === "allowed" ? c.green : r.decision === "denied" ? c.red : c.yellow;
  const where =
    r.host === null
      ? r.destination
      : `${r.kind === "http" ? "GET" : "CONNECT"} ${authority(r.host, r.port!)}${r.path ?? ""}`;
  const via = r.dial
    ? ` via ${r.dial}`
    : r.unresolved
      ? ` (${r.unresolved}: the shield would answer 502)`
      : "";
  // "matched <rule>" says nothing the rule column does not.
  const why = r.rule !== null && r.reason === `matched ${r.rule}` ? "" : `  ${c.dim(r.reason)}`;
  return `${paint(r.decision.padEnd(7))}  ${where}${via}  ${c.dim(r.rule ?? "default")}${why}`;
}

/** `shield check`: the config's validity, or what the shield would decide for destinations. */
export function registerShieldCheckCommand(shield: Command, setCode: (c: number) => void): void {
  shield
    .command("check")
    .description(
      "validate shield.yaml, or say what the shield would decide for an agent and destinations (exit 1 if any is denied)",
    )
    .argument("[destination...]", "http://host/path, https://host, or host[:port] as CONNECT takes it")
    .option("--config <file>", `shield.yaml (default ${DEFAULT_CONFIG} when it exists)`)
    .option("--agent <id>", "the agent asking")
    .option("--source <address>", "the agent that this source address identifies (without credentials)")
    .option("--all-agents", "every agent of the config, one row each: who may reach these destinations?")
    .option("--resolve", "look names up with the system resolver and judge every address, as the shield does")
    .option("--strict", "without destinations: exit 1 when the config draws a warning")
    .option("--json", `print JSON (schema ${SCHEMA})`)
    .option(
      "--expect <decision>",
      "exit 0 only when every destination is decided so (allowed, audited or denied), else 1: a policy test",
    )
    .option("--tests <file>", "run the policy tests in FILE (a YAML list of agents and expected decisions)")
    .option(
      "--live",
      "ask the running shield through its admin API: its policy as in force now, its resolver",
    )
    .option("--admin <url>", "with --live: admin API address (env CLAWGUARD_ADMIN_URL; else from --config)")
    .option("--token-file <file>", "with --live: the admin token file (env CLAWGUARD_ADMIN_TOKEN_FILE)")
    .action(async (given: string[], flags: CheckFlags) => {
      const expect = expected(flags);
      if (flags.tests !== undefined) return checkTests(flags.tests, given, flags, setCode);
      if (flags.live) return checkLive(given, flags, expect, setCode);
      if (flags.admin !== undefined || flags.tokenFile !== undefined)
        throw new Error("--admin and --token-file ask the running shield: add --live");
      const file = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
      if (file === undefined)
        throw new Error(`which config? pass --config shield.yaml (${DEFAULT_CONFIG} does not exist)`);
      const loaded = await loadShieldConfig(file);
      const out = (o: unknown, text: string) =>
        process.stdout.write(
          flags.json
            ? JSON.stringify({ schema: SCHEMA, config: file, ...(o as object) }, null, 2) + "\n"
            : text,
        );
      if (given.length === 0) {
        if (
          flags.agent !== undefined ||
          flags.source !== undefined ||
          flags.allAgents ||
          expect !== undefined
        )
          throw new Error("give one or more destinations to check for the agent");
        const warnings = lintShieldConfig(loaded);
        const summary = {
          valid: true,
          agents: loaded.agents.length,
          tiers: Object.keys(loaded.tiers).length,
          fleets: Object.keys(loaded.fleets).length,
          rules: ruleCount(loaded),
          mode: loaded.mode,
          warnings,
        };
        const color = !flags.json && wantColor(process.stdout);
        const c = pc.createColors(color);
        out(
          summary,
          `${file}: valid; ${summary.agents} agent(s), ${summary.tiers} tier(s), ${summary.fleets} fleet(s), ` +
            `${summary.rules} rule(s), mode ${summary.mode}` +
            (warnings.length ? `; ${warnings.length} warning(s)` : "") +
            "\n" +
            warnings
              .map((w) => `${c.yellow("warning")} ${w.key}: ${w.message} ${c.dim(`[${w.code}]`)}\n`)
              .join(""),
        );
        if (flags.strict && warnings.length > 0) {
          setCode(1);
          return;
        }
        setCode(0);
        return;
      }
      oneAsker(flags);
      // Every destination is read before any is judged: a typo fails the whole command.
      const destinations: Destination[] = given.map(expect ? readableDestination : parseDestination);
      const { cfg, switches } = await effectiveConfig(loaded);
      const resolver = flags.resolve ? systemResolver : null;
      const saved = switches > 0 ? ` (${switches} mode switch(es) saved through the admin API applied)` : "";
      const lookups = flags.resolve ? "" : "; names not looked up (--resolve judges their addresses too)";
      if (flags.allAgents) {
        const ids = cfg.agents.map((a) => a.id);
        const agents = await checkEveryAgent(compilePolicy(cfg), ids, destinations, resolver);
        const shown = everyAgentOutput(agents, given, expect, !flags.json && wantColor(process.stdout));
        out(
          {
            all: true,
            savedModeSwitches: switches,
            resolved: Boolean(flags.resolve),
            agents,
            ...(expect !== undefined ? { expect, unexpected: shown.failed } : {}),
          },
          `${agents.length} agent(s)${saved}${lookups}\n` + shown.text,
        );
        setCode(shown.failed.length === 0 ? 0 : 1);
        return;
      }
      const ck = checker(cfg, { agentId: flags.agent, source: flags.source }, resolver);
      const results: CheckResult[] = await Promise.all(destinations.map((d) => ck.check(d)));
      const { agent, mode } = ck;
      const head = agentLine(agent, mode) + saved + lookups + "\n";
      const failed = unexpected(results, expect);
      out(
        {
          agent,
          mode,
          savedModeSwitches: switches,
          resolved: Boolean(flags.resolve),
          results,
          ...(expect !== undefined ? { expect, unexpected: failed } : {}),
        },
        head + lines(results, !flags.json && wantColor(process.stdout), expect),
      );
      setCode(failed.length === 0 ? 0 : 1);
    });
}

function agentLine(agent: Agent, mode: Mode): string {
  const who = [agent.fleet && `fleet ${agent.fleet}`, agent.tier && `tier ${agent.tier}`]
    .filter(Boolean)
    .join(", ");
  return `agent ${agent.id}${who ? ` (${who})` : ""}, mode ${mode}`;
}

function lines(results: CheckResult[], color: boolean, expect: Expected | undefined): string {
  const c = pc.createColors(color);
  return results
    .map(
      (r) =>
        formatCheck(r, color) +
        (expect !== undefined && fails(r, expect) ? `  ${c.red(`(expected ${expect})`)}` : "") +
        "\n",
    )
    .join("");
}

/**
 * `--live`: the same question put to the running shield. Between an edit of shield.yaml and its
 * reload, or after a mode switch, this is the answer that holds for the agents now.
 */
async function checkLive(
  given: string[],
  flags: CheckFlags,
  expect: Expected | undefined,
  setCode: (c: number) => void,
): Promise<void> {
  if (given.length === 0)
    throw new Error("--live asks about destinations: give one or more (validating a file needs no shield)");
  if (flags.strict) throw new Error("--strict is about the config file's warnings, not --live");
  oneAsker(flags);
  given.forEach(expect ? readableDestination : parseDestination); // named here, before the shield is asked
  const who = flags.allAgents
    ? { all: true }
    : flags.agent !== undefined
      ? { agent: flags.agent }
      : { source: flags.source };
  const lookups = flags.resolve ? "" : "; names not looked up (--resolve judges their addresses too)";
  const reply = await call(flags, "POST", "/api/check", {
    ...who,
    destinations: given,
    resolve: Boolean(flags.resolve),
  });
  if (flags.allAgents) {
    const all = reply as unknown as { agents: AgentAnswer[] };
    const shown = everyAgentOutput(all.agents, given, expect, !flags.json && wantColor(process.stdout));
    process.stdout.write(
      flags.json
        ? JSON.stringify(
            { ...reply, ...(expect !== undefined ? { expect, unexpected: shown.failed } : {}) },
            null,
            2,
          ) + "\n"
        : `${all.agents.length} agent(s), asked the running shield${lookups}\n` + shown.text,
    );
    setCode(shown.failed.length === 0 ? 0 : 1);
    return;
  }
  const answer = reply as unknown as LiveAnswer;
  const failed = unexpected(answer.results, expect);
  if (flags.json) {
    const extra = expect !== undefined ? { expect, unexpected: failed } : {};
    process.stdout.write(JSON.stringify({ ...answer, ...extra }, null, 2) + "\n");
  } else {
    const head = agentLine(answer.agent, answer.mode) + ", asked the running shield" + lookups + "\n";
    process.stdout.write(head + lines(answer.results, wantColor(process.stdout), expect));
  }
  setCode(failed.length === 0 ? 0 : 1);
}

interface LiveAnswer {
  schema: string;
  live: true;
  agent: Agent;
  mode: Mode;
  resolved: boolean;
  results: CheckResult[];
}

/**
 * `--tests FILE`: every case of a policy tests file, against the config file or, with `--live`,
 * the running shield. Prints the expectations that do not hold; exit 1 when there is any.
 */
async function checkTests(
  testsFile: string,
  given: string[],
  flags: CheckFlags,
  setCode: (c: number) => void,
): Promise<void> {
  if (given.length > 0 || flags.agent || flags.source || flags.allAgents || flags.expect || flags.strict)
    throw new Error(
      "--tests takes its agents, destinations and expectations from the file: give none of them here",
    );
  const cases = await loadPolicyTests(testsFile);
  const resolve = Boolean(flags.resolve);
  let ask: (who: Asker, destinations: string[]) => Promise<AgentAnswer[]>;
  let against: Record<string, unknown>;
  if (flags.live) {
    ask = async (who, destinations) => {
      const reply = await call(flags, "POST", "/api/check", { ...who, destinations, resolve });
      return "all" in who
        ? (reply as unknown as { agents: AgentAnswer[] }).agents
        : [reply as unknown as AgentAnswer];
    };
    against = { live: true };
  } else {
    if (flags.admin !== undefined || flags.tokenFile !== undefined)
      throw new Error("--admin and --token-file ask the running shield: add --live");
    const file = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
    if (file === undefined)
      throw new Error(`which config? pass --config shield.yaml (${DEFAULT_CONFIG} does not exist)`);
    const { cfg } = await effectiveConfig(await loadShieldConfig(file));
    const policy = compilePolicy(cfg);
    const resolver = resolve ? systemResolver : null;
    const ids = cfg.agents.map((a) => a.id);
    ask = async (who, destinations) => {
      const ds = destinations.map(parseDestination);
      if ("all" in who) return checkEveryAgent(policy, ids, ds, resolver);
      const ck = policyChecker(
        policy,
        "agent" in who ? { agentId: who.agent } : { source: who.source },
        resolver,
      );
      return [{ agent: ck.agent, mode: ck.mode, results: await Promise.all(ds.map((d) => ck.check(d))) }];
    };
    against = { config: file };
  }
  const outcomes = await runPolicyTests(testsFile, cases, ask);
  const failed = outcomes.filter((o) => !o.holds);
  if (flags.json) {
    const report = {
      schema: TESTS_SCHEMA,
      tests: testsFile,
      ...against,
      resolved: resolve,
      cases: cases.length,
    };
    process.stdout.write(JSON.stringify({ ...report, failed: failed.length, outcomes }, null, 2) + "\n");
  } else {
    const c = pc.createColors(wantColor(process.stdout));
    const head =
      `${testsFile}: ${outcomes.length} expectation(s) in ${cases.length} case(s), ` +
      (failed.length === 0 ? c.green("all hold") : c.red(`${failed.length} do not hold`)) +
      (resolve ? "" : "; names not looked up (--resolve judges their addresses too)") +
      "\n";
    process.stdout.write(head + failed.map((o) => failure(testsFile, o, c)).join(""));
  }
  setCode(failed.length === 0 ? 0 : 1);
}

const TESTS_SCHEMA = "clawguard.shield-check-tests/v1";

function failure(file: string, o: PolicyOutcome, c: ReturnType<typeof pc.createColors>): string {
  const where = o.line !== undefined ? `${file}:${o.line}` : file;
  return (
    `${c.red("FAIL")}  ${where}  ${o.agent}  ${o.destination}  ${o.decision} (expected ${o.expected})  ` +
    `${c.dim(o.rule ?? "default")}${o.rule !== null && o.reason === `matched ${o.rule}` ? "" : `  ${c.dim(o.reason)}`}\n`
  );
}
