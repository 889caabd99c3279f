/**
 * The operator's HTTP API, metrics and dashboard, on a listener of its own (never the proxy's).
 * Everything under /api and /metrics needs the bearer token; the dashboard's static files do
 * not (they hold no data and ask for the token in the browser).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
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
import { DECISIONS, type LogReader } from "../log/index.js";
import type { Resolver } from "../net/resolve.js";
import type { Mode } from "../types.js";
import { ControlError, type ShieldControl, type LiveDecision } from "./control.js";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard/assets.js";
import type { ShieldMetrics } from "./metrics.js";
import type { ReloadOutcome } from "../reload.js";
import { RULE_LEVELS, listRules, type RuleEdit } from "./rules-file.js";
import {
  HttpError,
  limiter,
  MAX_BODY,
  parse,
  pathOf,
  readJson,
  SECURITY_HEADERS,
  sendJson,
  staticFile,
} from "./http.js";

export interface AdminApi {
  control: ShieldControl;
  metrics: ShieldMetrics;
  /** The audit log, for /api/log. */
  log: LogReader;
  /** sha256 of the admin token. */
  tokenSha256: Buffer;
  version: string;
  /** Add or remove a rule: edit the file, validate, write it, apply. */
  editRule(edit: RuleEdit, op: "add" | "remove"): Promise<{ tunnelsClosed: number }>;
  /** Read shield.yaml again and apply it, as SIGHUP does. */
  reload(trigger: string): Promise<ReloadOutcome>;
  /** Keep the API's mode switches across restarts. */
  saveModes(): Promise<void>;
  /** The proxy's own resolver, for /api/check with `resolve`. */
  resolver: Resolver;
}

/** Destinations one /api/check may ask about: each may cost a name lookup. */
const MAX_CHECKS = 64;
/**
 * Name lookups the checks may run at once, over all requests. getaddrinfo runs on libuv's
 * thread pool (4 threads), which the proxy's own lookups need: an operator asking about 64 slow
 * names must not hold up the agents' requests.
 */
const CHECK_LOOKUPS = 2;
const MAX_STREAMS = 32;
const HEARTBEAT_MS = 15_000;

const modeSchema = z.strictObject({
  scope: z.enum(["global", "fleet", "agent"]),
  id: z.string().min(1).max(128).optional(),
  mode: z.enum(["enforce", "audit", "lockdown"]).nullable(),
});

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

/** The admin listener's request handler. */
export function createAdminHandler(
  api: AdminApi,
): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  let streams = 0;
  const lookup = limiter(CHECK_LOOKUPS);

  /**
   * The running shield's answer for one asker about destinations: the compiled policy in force
   * (mode switches and rule edits included), its resolver when `resolve`, and each agent's
   * budgets, which no destination's decision shows. Nothing is logged or counted.
   */
  const ask = async (who: Asker, destinations: Destination[], resolve: boolean): Promise<AgentAnswer[]> => {
    // The agents and the policy of one config: `apply` swaps both at once.
    const ids = api.control.cfg.agents.map((a) => a.id);
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
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError || err instanceof ControlError) {
        sendJson(res, err.status, { error: err.message, ...(err.field ? { field: err.field } : {}) });
      } else {
        process.stderr.write(`clawguard shield admin: ${req.method} ${pathOf(req)}: ${String(err)}\n`);
        sendJson(res, 500, { error: "internal error; see the shield's stderr" });
      }
    });
  };

  const expected = api.tokenSha256;
  const authorized = (req: http.IncomingMessage): boolean => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? "");
    if (!m) return false;
    // Hashing both sides gives equal lengths for timingSafeEqual and leaks nothing about length.
    const got = createHash("sha256")
      .update(m[1] as string)
      .digest();
    return timingSafeEqual(got, expected);
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://admin");
    const p = url.pathname;
    const method = req.method ?? "GET";
    if (p === "/" || p === "/index.html")
      return staticFile(req, res, DASHBOARD_HTML, "text/html; charset=utf-8");
    if (p === "/dashboard.js") return staticFile(req, res, DASHBOARD_JS, "text/javascript; charset=utf-8");
    if (p === "/dashboard.css") return staticFile(req, res, DASHBOARD_CSS, "text/css; charset=utf-8");
    if (p === "/favicon.ico") {
      // Browsers ask for it on every page; an empty answer keeps their consoles clean.
      res.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const route = ROUTES[p];
    if (!route) throw new HttpError(404, null, `no such endpoint: ${p}`);
    if (!authorized(req)) {
      req.resume();
      res.setHeader("www-authenticate", 'Bearer realm="shield"');
      throw new HttpError(401, null, "missing or wrong bearer token (Authorization: Bearer TOKEN)");
    }
    const fn = route[method];
    if (!fn) {
      req.resume();
      res.setHeader("allow", Object.keys(route).join(", "));
      throw new HttpError(
        405,
        null,
        `${method} is not supported on ${p}; use ${Object.keys(route).join(" or ")}`,
      );
    }
    await fn(req, res, url);
  }

  type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> | void;
  const ROUTES: Record<string, Record<string, Handler>> = {
    "/api/status": {
      GET: (_req, res) => {
        const c = api.control;
        const totals = c.decisionTotals();
        sendJson(res, 200, {
          schema: "clawguard.shield-status/v1",
          version: api.version,
          startedAt: c.startedAt,
          uptimeSeconds: Math.round((Date.now() - c.startedAt) / 1000),
          config: c.cfg.file,
          decisions: { allowed: totals.allowed, denied: totals.denied, audited: totals.audited },
          bytes: { up: totals.bytesUp, down: totals.bytesDown },
          openTunnels: c.openTunnels(),
          agents: c.cfg.agents.length,
          modes: c.modes(),
          lastReload: c.lastReload,
        });
      },
    },
    "/api/agents": {
      GET: (_req, res) =>
        sendJson(res, 200, { schema: "clawguard.shield-agents/v1", agents: api.control.agents() }),
    },
    "/api/traffic": {
      GET: (_req, res) =>
        sendJson(res, 200, { schema: "clawguard.shield-traffic/v1", ...api.control.history.view() }),
    },
    "/api/mode": {
      PUT: async (req, res) => {
        const body = parse(modeSchema, await readJson(req));
        if (body.scope !== "global" && body.id === undefined) {
          throw new HttpError(400, "id", `scope "${body.scope}" needs the ${body.scope}'s id`);
        }
        const closed = api.control.setMode(
          body.scope,
          body.scope === "global" ? undefined : body.id,
          body.mode as Mode | null,
        );
        try {
          await api.saveModes();
        } catch (e) {
          // The switch holds now (a lockdown must not wait for a disk); say it will not survive a restart.
          const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
          sendJson(res, 500, {
            ok: false,
            error: `the mode is in force, but could not be saved (${why}): it will not survive a restart`,
            tunnelsClosed: closed,
            modes: api.control.modes(),
          });
          return;
        }
        sendJson(res, 200, { ok: true, tunnelsClosed: closed, modes: api.control.modes() });
      },
    },
    "/api/reload": {
      POST: async (_req, res) => {
        const r = await api.reload("admin api");
        // A refused file leaves the running policy in force: say so with the file's own error.
        sendJson(res, r.ok ? 200 : 422, { schema: "clawguard.shield-reload/v1", ...r });
      },
    },
    "/api/rules": {
      GET: (_req, res) =>
        sendJson(res, 200, { schema: "clawguard.shield-rules/v1", levels: listRules(api.control.cfg) }),
      POST: async (req, res) => {
        const edit = parse(ruleSchema, await readJson(req)) as RuleEdit;
        const r = await api.editRule(edit, "add");
        sendJson(res, 201, { ok: true, ...r, levels: listRules(api.control.cfg) });
      },
      DELETE: async (req, res) => {
        const edit = parse(ruleSchema, await readJson(req)) as RuleEdit;
        const r = await api.editRule(edit, "remove");
        sendJson(res, 200, { ok: true, ...r, levels: listRules(api.control.cfg) });
      },
    },
    "/api/check": {
      // What the running shield would decide, without sending anything: its compiled policy
      // with the mode switches in force, and its resolver. Nothing is logged or counted.
      POST: async (req, res) => {
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
          answers = await ask(who, destinations, Boolean(body.resolve));
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
      },
    },
    "/api/check-tests": {
      // A policy tests file (as `shield check --tests` reads it) run against the running shield.
      POST: async (req, res) => {
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
            ask(who, given.map(parseDestination), resolve),
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
      },
    },
    "/api/log": {
      GET: (_req, res, url) => {
        const q = url.searchParams;
        for (const k of q.keys()) {
          if (!["agent", "decision", "host", "since", "limit"].includes(k)) {
            throw new HttpError(
              400,
              k,
              `unknown query parameter "${k}" (agent, decision, host, since, limit)`,
            );
          }
        }
        const decision = q.get("decision") ?? undefined;
        if (decision !== undefined && !(DECISIONS as readonly string[]).includes(decision)) {
          throw new HttpError(400, "decision", `decision must be one of ${DECISIONS.join(", ")}`);
        }
        const limitText = q.get("limit") ?? "100";
        const limit = Number(limitText);
        if (!/^[0-9]+$/.test(limitText) || limit < 1 || limit > 1000) {
          throw new HttpError(400, "limit", "limit must be a whole number from 1 to 1000");
        }
        const sinceText = q.get("since");
        let since: number | undefined;
        if (sinceText !== null) {
          since = /^[0-9]+$/.test(sinceText) ? Number(sinceText) : Date.parse(sinceText);
          if (!Number.isFinite(since)) {
            throw new HttpError(
              400,
              "since",
              "since must be milliseconds since the epoch or an ISO 8601 time",
            );
          }
        }
        const records = api.log.query({
          ...(q.get("agent") ? { agent: q.get("agent") as string } : {}),
          ...(decision ? { decision: decision as (typeof DECISIONS)[number] } : {}),
          ...(q.get("host") ? { host: q.get("host") as string } : {}),
          ...(since !== undefined ? { since } : {}),
          limit,
          order: "desc",
        });
        sendJson(res, 200, { schema: "clawguard.shield-log/v1", records });
      },
    },
    "/api/events": {
      GET: (req, res) => {
        if (streams >= MAX_STREAMS)
          throw new HttpError(503, null, `already ${MAX_STREAMS} live streams open`);
        streams += 1;
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          "content-type": "text/event-stream; charset=utf-8",
          connection: "keep-alive",
          "x-accel-buffering": "no",
        });
        res.write("retry: 2000\n: live decisions\n\n");
        const send = (d: LiveDecision) =>
          res.write(`id: ${d.seq}\nevent: decision\ndata: ${JSON.stringify(d)}\n\n`);
        api.control.events.on("decision", send);
        const beat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
        req.socket.setTimeout(0);
        const stop = () => {
          clearInterval(beat);
          api.control.events.off("decision", send);
        };
        res.once("close", () => {
          streams -= 1;
          stop();
        });
      },
    },
    "/metrics": {
      GET: async (_req, res) => {
        const text = await api.metrics.registry.metrics();
        res.writeHead(200, { ...SECURITY_HEADERS, "content-type": api.metrics.registry.contentType });
        res.end(text);
      },
    },
  };

  return onRequest;
}
