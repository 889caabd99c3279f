/**
 * The admin API's policy routes: the rules (read, added and removed in scope), a reload of the
 * file, and what the running shield would decide (`/api/check`, `/api/check-tests`), asked of
 * its compiled policy, nothing logged or counted.
 */
import { z } from "zod";
import {
  askPolicy,
  CheckAgentError,
  DestinationError,
  parseDestination,
  type AgentAnswer,
  type Destination,
} from "../check.js";
import {
  parsePolicyTests,
  runPolicyTests,
  type Asker,
  type PolicyCase,
  type PolicyOutcome,
} from "../check-tests.js";
import { ConfigError } from "../../errors.js";
import type { ShieldConfig } from "../config.js";
import { unscoped, type Operator } from "./access.js";
import { ControlError } from "./control.js";
import { HttpError, limiter, MAX_BODY, parse, readJson, sendJson } from "./http.js";
import { change, admin, read, targetOf, where, type Changed, type Routes } from "./route.js";
import { RULE_LEVELS, listRules, type RuleEdit } from "./rules-file.js";
import { scopeLevels, visibleAgent, visibleAgents, visibleFleet } from "./scope.js";
import type { AdminApi } from "./server.js";

/** Destinations one /api/check may ask about: each may cost a name lookup. */
const MAX_CHECKS = 64;
/**
 * Name lookups the checks may run at once, over all requests. getaddrinfo runs on libuv's
 * thread pool (4 threads), which the proxy's own lookups need: an operator asking about 64 slow
 * names must not hold up the agents' requests.
 */
const CHECK_LOOKUPS = 2;

const ruleSchema = z.strictObject({
  level: z.enum(RULE_LEVELS as [string, ...string[]]),
  name: z.string().min(1).max(128).optional(),
  verdict: z.enum(["allow", "deny"]),
  rule: z.string().min(1).max(1024),
});

const checkTestsSchema = z.strictObject({
  tests: z.string().min(1).max(MAX_BODY),
  resolve: z.boolean().optional(),
});

/** Cases one /api/check-tests runs: each may ask every agent about 64 destinations. */
const MAX_TEST_CASES = 256;
/** What the tests text is called in its errors ("tests:7: [0].allowed[1]: ..."). */
const TESTS_NAME = "tests";

const checkSchema = z.strictObject({
  agent: z.string().min(1).max(128).optional(),
  source: z.string().min(1).max(64).optional(),
  all: z.literal(true).optional(),
  destinations: z.array(z.string().min(1).max(2048)).min(1).max(MAX_CHECKS),
  resolve: z.boolean().optional(),
});

/**
 * A rule edit the operator may make: the global level and tiers (which span fleets) only with
 * a scope over every fleet; a fleet or an agent they do not see is absent, as an unknown one.
 */
function inScopeOf(cfg: ShieldConfig) {
  return (op: Operator, edit: RuleEdit): RuleEdit => {
    if (unscoped(op)) return edit;
    if (edit.level === "global" || edit.level === "tier")
      throw new HttpError(
        403,
        "level",
        `${op.name} edits the rules of fleets ${[...op.fleets!].join(", ")} and their agents only`,
      );
    if (edit.level === "fleet" && !visibleFleet(op, cfg, edit.name ?? ""))
      throw new ControlError(404, "name", `unknown fleet "${edit.name}"`);
    if (edit.level === "agent" && !visibleAgent(op, cfg, edit.name ?? ""))
      throw new ControlError(404, "name", `unknown agent "${edit.name}"`);
    return edit;
  };
}

export function policyRoutes(api: AdminApi, changed: Changed): Routes {
  const lookup = limiter(CHECK_LOOKUPS);
  /**
   * The running shield's answer for one asker about destinations: the compiled policy in force
   * (mode switches and rule edits included), its resolver when `resolve`, and each agent's
   * budgets, which no destination's decision shows. Nothing is logged or counted.
   */
  const ask = async (
    op: Operator,
    who: Asker,
    destinations: Destination[],
    resolve: boolean,
  ): Promise<AgentAnswer[]> => {
    // The agents and the policy of one config: `apply` swaps both at once.
    const cfg = api.control.cfg;
    const ids = visibleAgents(op, cfg).map((a) => a.id);
    // An agent the operator does not see is asked about as one that does not exist.
    if ("agent" in who && !visibleAgent(op, cfg, who.agent))
      throw new CheckAgentError("agent", `no agent "${who.agent}" in the config`);
    if ("source" in who) {
      const found = api.control.policy.identify(who.source);
      if (found && !visibleAgent(op, cfg, found.id))
        throw new CheckAgentError(
          "source",
          `no agent is known by source address ${who.source} alone (an agent with a token is asked for by its id)`,
        );
    }
    const answers = await askPolicy(
      api.control.policy,
      ids,
      who,
      destinations,
      resolve ? api.resolver : null,
      api.control.budgetGate,
      lookup,
    );
    // Not a decision about destinations: a spent budget refuses all of them for now.
    return answers.map((a) => ({ ...a, budget: api.control.budgetsOf(a.agent).budgetUse }));
  };
  /** A rule added or removed in the operator's scope: in force on return, and a record of the log. */
  const ruleEdit = (how: "add" | "remove") =>
    change(async (req, res, _url, op) => {
      const edit = inScopeOf(api.control.cfg)(op, parse(ruleSchema, await readJson(req)) as RuleEdit);
      const r = await api.editRule(edit, how, op.name);
      changed(
        op,
        how === "add" ? "ruleAdded" : "ruleRemoved",
        targetOf(api.control.cfg, edit.level, edit.name),
        `${edit.verdict} ${JSON.stringify(edit.rule)} ${how === "add" ? "added to" : "removed from"} ${where(edit.level, edit.name)}; ${r.tunnelsClosed} tunnel(s) closed`,
      );
      const cfg = api.control.cfg;
      sendJson(res, how === "add" ? 201 : 200, {
        ok: true,
        ...r,
        levels: scopeLevels(op, cfg, listRules(cfg)),
      });
    });
  return {
    "/api/reload": {
      // The file holds every fleet's policy: reading it again is an admin's act.
      POST: admin(async (_req, res, _url, op) => {
        const r = await api.reload(`admin api by ${op.name}`);
        // A refused file leaves the running policy in force: say so with the file's own error.
        sendJson(res, r.ok ? 200 : 422, { schema: "clawguard.shield-reload/v1", ...r });
      }),
    },
    "/api/rules": {
      GET: read((_req, res, _url, op) => {
        const cfg = api.control.cfg;
        sendJson(res, 200, {
          schema: "clawguard.shield-rules/v1",
          levels: scopeLevels(op, cfg, listRules(cfg)),
        });
      }),
      POST: ruleEdit("add"),
      DELETE: ruleEdit("remove"),
    },
    "/api/check": {
      // What the running shield would decide, without sending anything: its compiled policy
      // with the mode switches in force, and its resolver. Nothing is logged or counted.
      POST: read(async (req, res, _url, op) => {
        const body = parse(checkSchema, await readJson(req));
        const asked = [body.agent, body.source, body.all].filter((x) => x !== undefined).length;
        if (asked !== 1)
          throw new HttpError(
            400,
            "agent",
            "give exactly one of agent (an id), source (an address) or all (true: every agent)",
          );
        const destinations = body.destinations.map((d, i) => {
          try {
            return parseDestination(d);
          } catch (e) {
            if (e instanceof DestinationError) throw new HttpError(400, `destinations.${i}`, e.message);
            throw e;
          }
        });
        const who: Asker = body.all
          ? { all: true }
          : body.agent !== undefined
            ? { agent: body.agent }
            : { source: body.source! };
        const head = { schema: "clawguard.shield-check/v1", live: true, resolved: Boolean(body.resolve) };
        let answers: AgentAnswer[];
        try {
          answers = await ask(op, who, destinations, Boolean(body.resolve));
        } catch (e) {
          if (e instanceof CheckAgentError) throw new HttpError(404, e.field, e.message);
          throw e;
        }
        if (body.all) {
          sendJson(res, 200, { ...head, all: true, agents: answers });
          return;
        }
        const { agent, mode, budgets, budget, results } = answers[0]!;
        sendJson(res, 200, { ...head, agent, mode, budgets, budget, results });
      }),
    },
    "/api/check-tests": {
      // A policy tests file (as `shield check --tests` reads it) run against the running shield.
      POST: read(async (req, res, _url, op) => {
        const body = parse(checkTestsSchema, await readJson(req));
        let cases: PolicyCase[];
        try {
          cases = parsePolicyTests(body.tests, TESTS_NAME);
        } catch (e) {
          if (e instanceof ConfigError) throw new HttpError(400, "tests", e.message);
          throw e;
        }
        if (cases.length > MAX_TEST_CASES)
          throw new HttpError(400, "tests", `at most ${MAX_TEST_CASES} cases at once, not ${cases.length}`);
        const resolve = Boolean(body.resolve);
        let outcomes: PolicyOutcome[];
        try {
          outcomes = await runPolicyTests(TESTS_NAME, cases, (who, given) =>
            ask(op, who, given.map(parseDestination), resolve),
          );
        } catch (e) {
          // A case for an agent or source the shield does not know cannot be run: not a pass.
          if (e instanceof Error && e.cause instanceof CheckAgentError)
            throw new HttpError(400, "tests", e.message);
          throw e;
        }
        sendJson(res, 200, {
          schema: "clawguard.shield-check-tests/v1",
          live: true,
          resolved: resolve,
          cases: cases.length,
          failed: outcomes.filter((o) => !o.holds).length,
          outcomes,
        });
      }),
    },
  };
}
