import { existsSync } from "node:fs";
import type { Command } from "commander";
import pc from "picocolors";
import {
  askPolicy,
  compilePolicy,
  effectiveConfig,
  parseDestination,
  readableDestination,
  ruleCount,
  type AgentAnswer,
  type CheckResult,
} from "../shield/check.js";
import {
  EXPECTATIONS,
  loadPolicyTests,
  runPolicyTests,
  type Asker,
  type Expectation,
  type PolicyOutcome,
} from "../shield/check-tests.js";
import type { BudgetUse } from "../shield/admission/budget.js";
import { loadShieldConfig, type ShieldConfig } from "../shield/config.js";
import type { Agent, BudgetLimit, Mode } from "../shield/types.js";
import { preflightShield } from "../shield/preflight.js";
import { lintShieldConfig } from "../shield/policy/lint.js";
import { systemResolver } from "../shield/net/resolve.js";
import { UsageError } from "../errors.js";
import { wantColor } from "./report.js";
import { call } from "../shield/admin/client.js";
import { table } from "./shield-admin.js";
import { formatHostPort } from "../net/hostport.js";

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
const TESTS_SCHEMA = "clawguard.shield-check-tests/v1";
const NOT_LOOKED_UP = "; names not looked up (--resolve judges their addresses too)";

/** `--expect`, checked before anything is asked. */
function expected(flags: CheckFlags): Expectation | undefined {
  if (flags.expect === undefined) return undefined;
  if (!(EXPECTATIONS as readonly string[]).includes(flags.expect))
    throw new UsageError(`--expect must be one of ${EXPECTATIONS.join(", ")}, not "${flags.expect}"`);
  return flags.expect as Expectation;
}

/** Whether a result fails: with `--expect`, decided otherwise; without, denied. */
function fails(r: CheckResult, expect: Expectation | undefined): boolean {
  return expect === undefined ? r.decision === "denied" : r.decision !== expect;
}

/** Exactly one of --agent, --source and --all-agents, as the admin API takes it. */
function asker(flags: CheckFlags): Asker {
  const n = [flags.agent, flags.source, flags.allAgents].filter((x) => x !== undefined).length;
  if (n !== 1) throw new UsageError("pass exactly one of --agent ID, --source ADDRESS or --all-agents");
  return flags.allAgents
    ? { all: true }
    : flags.agent !== undefined
      ? { agent: flags.agent }
      : { source: flags.source! };
}

/** Who answers: the config file's policy, or the running shield. */
type Ask = (who: Asker, destinations: string[]) => Promise<AgentAnswer[]>;

/** The policy compiled from `cfg` (saved mode switches already applied), asked here. */
function askFile(cfg: ShieldConfig, resolve: boolean): Ask {
  const policy = compilePolicy(cfg);
  const resolver = resolve ? systemResolver : null;
  const ids = cfg.agents.map((a) => a.id);
  return (who, destinations) =>
    askPolicy(policy, ids, who, destinations.map(parseDestination), resolver, null);
}

/** The running shield, through `POST /api/check`. */
function askLive(flags: CheckFlags, resolve: boolean): Ask {
  return async (who, destinations) => {
    const reply = await call(flags, "POST", "/api/check", { ...who, destinations, resolve });
    return "all" in who
      ? (reply as unknown as { agents: AgentAnswer[] }).agents
      : [reply as unknown as AgentAnswer];
  };
}

/** The config file named by the flags (or the default one), loaded; exit 2 when there is none. */
async function configFile(flags: CheckFlags): Promise<{ file: string; loaded: ShieldConfig }> {
  if (flags.admin !== undefined || flags.tokenFile !== undefined)
    throw new UsageError("--admin and --token-file ask the running shield: add --live");
  const file = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (file === undefined)
    throw new UsageError(`which config? pass --config shield.yaml (${DEFAULT_CONFIG} does not exist)`);
  return { file, loaded: await loadShieldConfig(file) };
}

/**
 * `--all-agents`: one row per agent, one column per destination, and the failures: with
 * `--expect`, each (agent, destination) decided otherwise; without, each denial.
 */
function everyAgentOutput(
  answers: AgentAnswer[],
  given: string[],
  expect: Expectation | undefined,
  color: boolean,
): { text: string; failed: Array<{ agent: string; destination: string; decision: string }> } {
  const c = pc.createColors(color);
  const failed: Array<{ agent: string; destination: string; decision: string }> = [];
  const rows: string[][] = [["AGENT", "MODE", ...given]];
  for (const a of answers) {
    rows.push([
      a.agent.id,
      a.budget && a.budget.fraction >= 1 ? `${a.mode}, budget spent` : a.mode,
      ...a.results.map((r) => {
        if (!fails(r, expect)) return r.decision;
        failed.push({ agent: a.agent.id, destination: r.destination, decision: r.decision });
        return expect === undefined ? r.decision : `${r.decision}!`;
      }),
    ]);
  }
  const paint = (padded: string, cell: string, column: number) =>
    column < 2
      ? padded
      : cell.endsWith("!")
        ? c.red(c.bold(padded))
        : cell === "allowed"
          ? c.green(padded)
          : cell === "denied"
            ? c.red(padded)
            : c.yellow(padded);
  let text = table(rows, paint) + "\n";
  if (expect !== undefined)
    text +=
      failed.length === 0
        ? `every agent: ${expect}, as expected\n`
        : `! not ${expect} as expected: ${failed.length}\n`;
  return { text, failed };
}

/** "matched <rule>" says nothing the rule column does not. */
function reasonAfterRule(rule: string | null, reason: string, c: ReturnType<typeof pc.createColors>): string {
  return rule !== null && reason === `matched ${rule}` ? "" : `  ${c.dim(reason)}`;
}

/** One line per destination: decision, where it goes, the rule, the reason and the address. */
export function formatCheck(r: CheckResult, color = false): string {
  const c = pc.createColors(color);
  const paint = r.decision === "allowed" ? c.green : r.decision === "denied" ? c.red : c.yellow;
  const where =
    r.host === null
      ? r.destination
      : `${r.kind === "http" ? "GET" : "CONNECT"} ${formatHostPort(r.host, r.port!)}${r.path ?? ""}`;
  const via = r.dial
    ? ` via ${r.dial}`
    : r.unresolved
      ? ` (${r.unresolved}: the shield would answer 502)`
      : "";
  return `${paint(r.decision.padEnd(7))}  ${where}${via}  ${c.dim(r.rule ?? "default")}${reasonAfterRule(r.rule, r.reason, c)}`;
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
      if (flags.live) {
        if (given.length === 0)
          throw new UsageError(
            "--live asks about destinations: give one or more (validating a file needs no shield)",
          );
        if (flags.strict) throw new UsageError("--strict is about the config file's warnings, not --live");
        return checkDestinations(given, flags, expect, askLive(flags, Boolean(flags.resolve)), {
          against: { live: true },
          note: ", asked the running shield",
        }).then(setCode);
      }
      const { file, loaded } = await configFile(flags);
      if (given.length === 0) {
        if (
          flags.agent !== undefined ||
          flags.source !== undefined ||
          flags.allAgents ||
          expect !== undefined
        )
          throw new UsageError("give one or more destinations to check for the agent");
        // "valid" means what shield run means by it: the token file and saved switches too.
        await preflightShield(loaded);
        return setCode(validate(file, loaded, flags));
      }
      const { cfg, switches } = await effectiveConfig(loaded);
      return checkDestinations(given, flags, expect, askFile(cfg, Boolean(flags.resolve)), {
        against: { config: file, savedModeSwitches: switches },
        note: switches > 0 ? ` (${switches} mode switch(es) saved through the admin API applied)` : "",
      }).then(setCode);
    });
}

/** Without destinations: the config's summary and warnings; the exit code. */
function validate(file: string, loaded: ShieldConfig, flags: CheckFlags): number {
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
  if (flags.json) {
    process.stdout.write(JSON.stringify({ schema: SCHEMA, config: file, ...summary }, null, 2) + "\n");
  } else {
    const c = pc.createColors(wantColor(process.stdout));
    process.stdout.write(
      `${file}: valid; ${summary.agents} agent(s), ${summary.tiers} tier(s), ${summary.fleets} fleet(s), ` +
        `${summary.rules} rule(s), mode ${summary.mode}` +
        (warnings.length ? `; ${warnings.length} warning(s)` : "") +
        "\n" +
        warnings
          .map((w) => `${c.yellow("warning")} ${w.key}: ${w.message} ${c.dim(`[${w.code}]`)}\n`)
          .join(""),
    );
  }
  return flags.strict && warnings.length > 0 ? 1 : 0;
}

/**
 * Destinations given on the command line, asked of the file's policy or (`--live`) of the
 * running shield; `note` follows the first line, `against` goes into the JSON. The exit code.
 */
async function checkDestinations(
  given: string[],
  flags: CheckFlags,
  expect: Expectation | undefined,
  ask: Ask,
  how: { against: Record<string, unknown>; note: string },
): Promise<number> {
  const who = asker(flags);
  // Every destination is read before any is judged: a typo fails the whole command, and
  // before the running shield is asked.
  given.forEach(expect ? readableDestination : parseDestination);
  const answers = await ask(who, given);
  const color = !flags.json && wantColor(process.stdout);
  const lookups = flags.resolve ? "" : NOT_LOOKED_UP;
  let body: Record<string, unknown>;
  let text: string;
  let failed: unknown[];
  if ("all" in who) {
    const shown = everyAgentOutput(answers, given, expect, color);
    failed = shown.failed;
    body = { all: true, agents: answers };
    text = `${answers.length} agent(s)${how.note}${lookups}\n` + shown.text;
  } else {
    const { agent, mode, results, budgets, budget } = answers[0]!;
    failed = results.filter((r) => fails(r, expect)).map((r) => r.destination);
    body = { agent, mode, budgets: budgets ?? [], ...(budget !== undefined ? { budget } : {}), results };
    text =
      agentLine(agent, mode) +
      how.note +
      lookups +
      "\n" +
      budgetsLine(budgets) +
      spentLine(budget) +
      lines(results, color, expect);
  }
  const report = { schema: SCHEMA, ...how.against, resolved: Boolean(flags.resolve), ...body };
  const verdict = expect !== undefined ? { expect, unexpected: failed } : {};
  process.stdout.write(flags.json ? JSON.stringify({ ...report, ...verdict }, null, 2) + "\n" : text);
  return failed.length === 0 ? 0 : 1;
}

/** "budgets: upload 50MB per 1h (tier:crew); 100 requests per 1m (agent:scout)", or nothing. */
function budgetsLine(budgets: readonly BudgetLimit[] | undefined): string {
  if (!budgets || budgets.length === 0) return "";
  return `budgets: ${budgets.map((b) => `${b.text} (${b.scope})`).join("; ")}\n`;
}

/** Asked live, an agent whose budget is spent is refused whatever the rules below say. */
function spentLine(budget: BudgetUse | null | undefined): string {
  if (!budget || budget.fraction < 1) return "";
  return `budget spent: ${budget.kind} (${budget.scope}); the shield refuses this agent until the budget's window moves on, whatever the rules below say\n`;
}

function agentLine(agent: Agent, mode: Mode): string {
  const who = [agent.fleet && `fleet ${agent.fleet}`, agent.tier && `tier ${agent.tier}`]
    .filter(Boolean)
    .join(", ");
  return `agent ${agent.id}${who ? ` (${who})` : ""}, mode ${mode}`;
}

function lines(results: CheckResult[], color: boolean, expect: Expectation | undefined): string {
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
    throw new UsageError(
      "--tests takes its agents, destinations and expectations from the file: give none of them here",
    );
  const cases = await loadPolicyTests(testsFile);
  const resolve = Boolean(flags.resolve);
  let ask: Ask;
  let against: Record<string, unknown>;
  if (flags.live) {
    ask = askLive(flags, resolve);
    against = { live: true };
  } else {
    const { file, loaded } = await configFile(flags);
    ask = askFile((await effectiveConfig(loaded)).cfg, resolve);
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
      (resolve ? "" : NOT_LOOKED_UP) +
      "\n";
    process.stdout.write(head + failed.map((o) => failure(testsFile, o, c)).join(""));
  }
  setCode(failed.length === 0 ? 0 : 1);
}

function failure(file: string, o: PolicyOutcome, c: ReturnType<typeof pc.createColors>): string {
  const where = o.line !== undefined ? `${file}:${o.line}` : file;
  return (
    `${c.red("FAIL")}  ${where}  ${o.agent}  ${o.destination}  ${o.decision} (expected ${o.expected})  ` +
    `${c.dim(o.rule ?? "default")}${reasonAfterRule(o.rule, o.reason, c)}\n`
  );
}
