/**
 * The operator's HTTP API, metrics and dashboard, on a listener of its own (never the proxy's).
 * Everything under /api and /metrics needs the bearer token; the dashboard's static files do
 * not (they hold no data and ask for the token in the browser).
 */
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
import type { ShieldConfig } from "../config.js";
import { changeRecord, DECISIONS, type ChangeKind, type LogFilter, type StoredRecord } from "../log/index.js";
import type { ChangeTarget } from "../log/changes.js";
import type { Resolver } from "../net/resolve.js";
import type { LogRecord, Mode } from "../types.js";
import { ControlError, type ShieldControl, type LiveDecision } from "./control.js";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard/assets.js";
import type { ShieldMetrics } from "./metrics.js";
import { storeRoutes, type StoreAdmin } from "./store-routes.js";
import { enrolRoutes } from "./enrol-routes.js";
import type { Authors } from "../membership.js";
import type { AgentTunnel } from "../wireguard/status.js";
import type { ReloadOutcome } from "../reload.js";
import { RULE_LEVELS, listRules, type RuleEdit } from "./rules-file.js";
import { may, OperatorTokens, unscoped, type Need, type Operator } from "./access.js";
import { addOperatorText, removeOperatorText } from "./operators-file.js";
import { ROLES, TOKEN_FILE_OPERATOR } from "../config-operators.js";
import { createHash, randomBytes } from "node:crypto";
import type { GrantAuthority } from "../ssh/ca.js";
import { asHttp, checkGrant, grantFor, grantSchema, listGrants } from "./grants.js";
import { scopeLevels, scopeMetrics, scopeModes, visibleAgent, visibleAgents, visibleFleet } from "./scope.js";
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
  /** The audit log, for /api/log: this shield's, or every node's when they share a store. */
  log: { query(filter: LogFilter): StoredRecord[] | Promise<StoredRecord[]> };
  /** sha256 of the admin token file's token (an admin named "admin"), or null without one. */
  adminTokenSha256: Buffer | null;
  version: string;
  /** Add or remove a rule: edit the file, validate, write it, apply; `by` names the operator. */
  editRule(edit: RuleEdit, op: "add" | "remove", by: string): Promise<{ tunnelsClosed: number }>;
  /**
   * Any other edit of shield.yaml's text, validated, written and applied as a rule edit is;
   * `authors` names who changed which agent in the membership records.
   */
  editConfig(
    trigger: string,
    edit: (text: string) => string,
    field: string,
    authors?: Authors,
  ): Promise<{ tunnelsClosed: number }>;
  /** Keep a mode switch of the API across restarts (and, sharing a store, pass it to every node). */
  saveModes(change: { scope: "global" | "fleet" | "agent"; id?: string; mode: Mode | null }): Promise<void>;
  /** Read shield.yaml again and apply it, as SIGHUP does. */
  reload(trigger: string): Promise<ReloadOutcome>;
  /** The store shared with other nodes; absent for a shield alone. */
  store?: StoreAdmin;
  /** The proxy's own resolver, for /api/check with `resolve`. */
  resolver: Resolver;
  /** Append a record to the audit log (each change an operator makes is one). */
  record(r: LogRecord): void;
  /** The fleet's SSH user CA, which signs access grants (its grants in a shared store, if any). */
  sshCa?: GrantAuthority;
  /** WireGuard agents' tunnels (handshake, endpoint, transfer), by agent id. */
  tunnels?: () => Promise<Map<string, AgentTunnel>>;
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

const operatorSchema = z.strictObject({
  name: z.string().min(1).max(64),
  role: z.enum(ROLES),
  fleets: z.array(z.string().min(1).max(128)).min(1).max(256).optional(),
});

const checkSchema = z.strictObject({
  agent: z.string().min(1).max(128).optional(),
  source: z.string().min(1).max(64).optional(),
  all: z.literal(true).optional(),
  destinations: z.array(z.string().min(1).max(2048)).min(1).max(MAX_CHECKS),
  resolve: z.boolean().optional(),
});

const NEED_ROLE: Record<Need, string> = {
  read: "a viewer or above",
  change: "an operator or an admin",
  admin: "an admin",
};

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

/** What a mode switch or a rule edit touched, as a change record names it. */
function targetOf(cfg: ShieldConfig, level: string, name: string | undefined): ChangeTarget {
  if (level === "fleet") return { fleet: name ?? null };
  if (level === "tier") return { tier: name ?? null };
  if (level === "agent") {
    const a = cfg.agents.find((x) => x.id === name);
    return { agent: name ?? null, fleet: a?.fleet ?? null, tier: a?.tier ?? null };
  }
  return {};
}

function where(level: string, name: string | undefined): string {
  return level === "global" ? "the global level" : `${level} ${name}`;
}

/** The admin listener's request handler. */
export function createAdminHandler(
  api: AdminApi,
): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  let streams = 0;
  const lookup = limiter(CHECK_LOOKUPS);
  const changed = (op: Operator, kind: ChangeKind, target: ChangeTarget, reason: string) =>
    api.record(changeRecord(op.name, kind, target, reason));

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

  // Operators come with the config: a reload that adds or removes one applies at once.
  let tokens: { cfg: unknown; tokens: OperatorTokens } | null = null;
  const operatorOf = (req: http.IncomingMessage): Operator | null => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? "");
    if (!m) return null;
    const cfg = api.control.cfg;
    if (tokens?.cfg !== cfg)
      tokens = { cfg, tokens: new OperatorTokens(cfg.operators, api.adminTokenSha256) };
    return tokens.tokens.authenticate(m[1] as string);
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
    const op = operatorOf(req);
    if (!op) {
      req.resume();
      res.setHeader("www-authenticate", 'Bearer realm="shield"');
      throw new HttpError(401, null, "missing or wrong bearer token (Authorization: Bearer TOKEN)");
    }
    const entry = route[method];
    if (!entry) {
      req.resume();
      res.setHeader("allow", Object.keys(route).join(", "));
      throw new HttpError(
        405,
        null,
        `${method} is not supported on ${p}; use ${Object.keys(route).join(" or ")}`,
      );
    }
    if (!may(op, entry.need)) {
      req.resume();
      throw new HttpError(
        403,
        null,
        `${op.name} is a ${op.role}: ${method} ${p} needs ${NEED_ROLE[entry.need]}`,
      );
    }
    await entry.fn(req, res, url, op);
  }

  type Handler = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    op: Operator,
  ) => Promise<void> | void;
  const read = (fn: Handler) => ({ need: "read" as Need, fn });
  const change = (fn: Handler) => ({ need: "change" as Need, fn });
  const admin = (fn: Handler) => ({ need: "admin" as Need, fn });
  const operatorList = () => [
    ...(api.adminTokenSha256
      ? [{ name: TOKEN_FILE_OPERATOR, role: "admin", fleets: null, from: "admin.token_file" }]
      : []),
    ...api.control.cfg.operators.map((o) => ({
      name: o.name,
      role: o.role,
      fleets: o.fleets,
      from: "operators",
    })),
  ];
  const ROUTES: Record<string, Record<string, { need: Need; fn: Handler }>> = {
    "/api/status": {
      GET: read((_req, res, _url, op) => {
        const c = api.control;
        const cfg = c.cfg;
        // A scoped operator's totals are their agents' own: the others' traffic is not theirs to see.
        const mine = unscoped(op) ? null : c.agents().filter((a) => visibleAgent(op, cfg, a.id));
        const totals = mine
          ? mine.reduce(
              (t, a) => ({
                allowed: t.allowed + a.allowed,
                denied: t.denied + a.denied,
                audited: t.audited + a.audited,
                bytesUp: t.bytesUp + a.bytesUp,
                bytesDown: t.bytesDown + a.bytesDown,
              }),
              { allowed: 0, denied: 0, audited: 0, bytesUp: 0, bytesDown: 0 },
            )
          : c.decisionTotals();
        const last = c.lastReload;
        sendJson(res, 200, {
          schema: "clawguard.shield-status/v1",
          version: api.version,
          operator: { name: op.name, role: op.role, fleets: op.fleets === null ? null : [...op.fleets] },
          startedAt: c.startedAt,
          uptimeSeconds: Math.round((Date.now() - c.startedAt) / 1000),
          config: cfg.file,
          decisions: { allowed: totals.allowed, denied: totals.denied, audited: totals.audited },
          bytes: { up: totals.bytesUp, down: totals.bytesDown },
          openTunnels: mine ? mine.reduce((n, a) => n + a.openTunnels, 0) : c.openTunnels(),
          agents: mine ? mine.length : cfg.agents.length,
          modes: scopeModes(op, cfg, c.modes()),
          // A reload's error quotes the file, other fleets included: only its outcome for a scoped eye.
          lastReload: mine && last ? { ok: last.ok, at: last.at, trigger: last.trigger } : last,
          store: api.store ? api.store.health() : { kind: "files" },
        });
      }),
    },
    "/api/agents": {
      GET: read(async (_req, res, _url, op) => {
        const owners = api.store?.owners();
        const agents = api.control.agents().filter((a) => visibleAgent(op, api.control.cfg, a.id));
        const tunnels = (await api.tunnels?.()) ?? new Map<string, AgentTunnel>();
        sendJson(res, 200, {
          schema: "clawguard.shield-agents/v1",
          agents: agents.map((a) => ({
            ...a,
            ...(owners ? { node: owners.get(a.id) ?? null } : {}),
            wireguard: tunnels.get(a.id) ?? null,
          })),
        });
      }),
    },
    "/api/traffic": {
      // A scoped operator's view counts only the agents they see, refusals included.
      GET: read((_req, res, _url, op) => {
        const cfg = api.control.cfg;
        const sees = unscoped(op) ? undefined : (id: string) => visibleAgent(op, cfg, id) !== null;
        sendJson(res, 200, { schema: "clawguard.shield-traffic/v1", ...api.control.history.view(10, sees) });
      }),
    },
    "/api/mode": {
      PUT: change(async (req, res, _url, op) => {
        const body = parse(modeSchema, await readJson(req));
        if (body.scope !== "global" && body.id === undefined) {
          throw new HttpError(400, "id", `scope "${body.scope}" needs the ${body.scope}'s id`);
        }
        const cfg = api.control.cfg;
        if (body.scope === "global" && !unscoped(op))
          throw new HttpError(
            403,
            "scope",
            `${op.name} steers fleets ${[...op.fleets!].join(", ")}, not the whole shield`,
          );
        if (body.scope === "fleet" && !visibleFleet(op, cfg, body.id!) && !unscoped(op))
          throw new ControlError(404, "id", `unknown fleet "${body.id}"`);
        if (body.scope === "agent" && !visibleAgent(op, cfg, body.id!) && !unscoped(op))
          throw new ControlError(404, "id", `unknown agent "${body.id}"`);
        const id = body.scope === "global" ? undefined : body.id;
        const closed = api.control.setMode(body.scope, id, body.mode as Mode | null);
        // In force from now, saved or not: the log says so before anything else can fail.
        changed(
          op,
          "mode",
          targetOf(cfg, body.scope, body.id),
          `mode of ${where(body.scope, body.id)} set to ${body.mode ?? "inherit"}; ${closed} tunnel(s) closed`,
        );
        try {
          await api.saveModes({
            scope: body.scope,
            ...(id !== undefined ? { id } : {}),
            mode: body.mode as Mode | null,
          });
        } catch (e) {
          // The switch holds now (a lockdown must not wait for a disk); say it will not survive a restart.
          const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
          sendJson(res, 500, {
            ok: false,
            error: `the mode is in force, but could not be saved (${why}): it will not survive a restart`,
            tunnelsClosed: closed,
            modes: scopeModes(op, cfg, api.control.modes()),
          });
          return;
        }
        sendJson(res, 200, {
          ok: true,
          tunnelsClosed: closed,
          modes: scopeModes(op, cfg, api.control.modes()),
        });
      }),
    },
    "/api/operators": {
      GET: admin((_req, res) =>
        sendJson(res, 200, { schema: "clawguard.shield-operators/v1", operators: operatorList() }),
      ),
      // The token is made here, shown once in the answer, and only its SHA-256 is kept.
      POST: admin(async (req, res, _url, op) => {
        const body = parse(operatorSchema, await readJson(req));
        if (body.name === TOKEN_FILE_OPERATOR && api.adminTokenSha256)
          throw new HttpError(409, "name", `"${TOKEN_FILE_OPERATOR}" is the holder of admin.token_file`);
        const token = randomBytes(24).toString("base64url");
        const tokenSha256 = createHash("sha256").update(token).digest("hex");
        // Sharing a store, operators are the store's: every node authenticates this one.
        if (api.store)
          await api.store.addOperator({
            name: body.name,
            role: body.role,
            tokenSha256,
            fleets: body.fleets ? [...new Set(body.fleets)] : null,
          });
        else
          await api.editConfig(
            `api add operator ${body.name} by ${op.name}`,
            (t) => addOperatorText(t, { ...body, tokenSha256 }),
            "operators",
          );
        changed(
          op,
          "operatorAdded",
          {},
          `operator ${body.name} added: ${body.role} of ${body.fleets ? `fleets ${body.fleets.join(", ")}` : "every fleet"}`,
        );
        sendJson(res, 201, {
          ok: true,
          name: body.name,
          role: body.role,
          fleets: body.fleets ?? null,
          token,
        });
      }),
      DELETE: admin(async (req, res, _url, op) => {
        const body = parse(z.strictObject({ name: z.string().min(1).max(64) }), await readJson(req));
        const left = operatorList().filter((o) => o.name !== body.name && o.role === "admin");
        // Nobody would be left to manage operators (or to put this one back).
        if (left.length === 0) throw new HttpError(409, "name", `${body.name} is the last admin`);
        if (body.name === TOKEN_FILE_OPERATOR && api.adminTokenSha256)
          throw new HttpError(
            409,
            "name",
            `the admin token file's holder goes with the file: remove admin.token_file instead`,
          );
        if (api.store) await api.store.removeOperator(body.name);
        else
          await api.editConfig(
            `api remove operator ${body.name} by ${op.name}`,
            (t) => removeOperatorText(t, body.name),
            "operators",
          );
        changed(op, "operatorRemoved", {}, `operator ${body.name} removed: they can no longer log in`);
        sendJson(res, 200, { ok: true, operators: operatorList() });
      }),
    },
    "/api/grants": {
      GET: read(async (_req, res, _url, op) => {
        const ca = api.sshCa;
        const grants = ca ? await ca.grants().catch((e: unknown) => Promise.reject(asHttp(e))) : [];
        sendJson(res, 200, {
          schema: "clawguard.shield-grants/v1",
          grants: listGrants(op, api.control.cfg, grants),
        });
      }),
      // Checked in full before signing: a refused grant signs nothing and logs nothing.
      POST: change(async (req, res, _url, op) => {
        const body = parse(grantSchema, await readJson(req));
        const cfg = api.control.cfg;
        const ms = checkGrant(op, cfg, body, cfg.sshAccess.maxGrantMs);
        if (!api.sshCa) throw new HttpError(409, null, "this shield has no SSH CA: clawguard shield ca init");
        const { grant, certificate } = await api.sshCa
          .sign({
            agent: body.agent,
            publicKey: body.key,
            durationMs: ms,
            operator: op.name,
            ...(body.as !== undefined ? { user: body.as } : {}),
            ...(body.noForwarding ? { noForwarding: true } : {}),
            ...(body.reason !== undefined ? { reason: body.reason } : {}),
          })
          .catch((e: unknown) => Promise.reject(asHttp(e)));
        const a = cfg.agents.find((x) => x.id === body.agent);
        changed(
          op,
          "grant",
          { agent: body.agent, fleet: a?.fleet ?? null, tier: a?.tier ?? null },
          `SSH access granted: serial ${grant.serial}, ${grant.principal}${body.as ? ` as ${body.as}` : ""}, key ${grant.fingerprint}, until ${new Date(grant.validBefore).toISOString()}${grant.noForwarding ? ", no forwarding" : ""}${body.reason ? `; reason: ${body.reason}` : ""}`,
        );
        sendJson(res, 201, { ok: true, grant, certificate });
      }),
      DELETE: change(async (req, res, _url, op) => {
        const body = parse(z.strictObject({ serial: z.number().int().min(1) }), await readJson(req));
        if (!api.sshCa) throw new HttpError(404, "serial", `no grant with serial ${body.serial}`);
        const cfg = api.control.cfg;
        await grantFor(op, cfg, api.sshCa, body.serial).catch((e: unknown) => Promise.reject(asHttp(e)));
        const g = await api.sshCa
          .revoke(body.serial, op.name)
          .catch((e: unknown) => Promise.reject(asHttp(e)));
        const a = cfg.agents.find((x) => x.id === g.agent);
        changed(
          op,
          "grantRevoked",
          { agent: g.agent, fleet: a?.fleet ?? null, tier: a?.tier ?? null },
          `SSH access revoked: serial ${g.serial} (${g.principal}) is in the KRL`,
        );
        sendJson(res, 200, { ok: true, grant: g });
      }),
    },
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
      POST: change(async (req, res, _url, op) => {
        const edit = inScopeOf(api.control.cfg)(op, parse(ruleSchema, await readJson(req)) as RuleEdit);
        const r = await api.editRule(edit, "add", op.name);
        changed(
          op,
          "ruleAdded",
          targetOf(api.control.cfg, edit.level, edit.name),
          `${edit.verdict} ${JSON.stringify(edit.rule)} added to ${where(edit.level, edit.name)}; ${r.tunnelsClosed} tunnel(s) closed`,
        );
        const cfg = api.control.cfg;
        sendJson(res, 201, { ok: true, ...r, levels: scopeLevels(op, cfg, listRules(cfg)) });
      }),
      DELETE: change(async (req, res, _url, op) => {
        const edit = inScopeOf(api.control.cfg)(op, parse(ruleSchema, await readJson(req)) as RuleEdit);
        const r = await api.editRule(edit, "remove", op.name);
        changed(
          op,
          "ruleRemoved",
          targetOf(api.control.cfg, edit.level, edit.name),
          `${edit.verdict} ${JSON.stringify(edit.rule)} removed from ${where(edit.level, edit.name)}; ${r.tunnelsClosed} tunnel(s) closed`,
        );
        const cfg = api.control.cfg;
        sendJson(res, 200, { ok: true, ...r, levels: scopeLevels(op, cfg, listRules(cfg)) });
      }),
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
    "/api/log": {
      GET: read(async (_req, res, url, op) => {
        const q = url.searchParams;
        for (const k of q.keys()) {
          if (!["agent", "decision", "host", "since", "limit", "operator"].includes(k)) {
            throw new HttpError(
              400,
              k,
              `unknown query parameter "${k}" (agent, decision, host, since, limit, operator)`,
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
        const records = await api.log.query({
          ...(q.get("agent") ? { agent: q.get("agent") as string } : {}),
          ...(decision ? { decision: decision as (typeof DECISIONS)[number] } : {}),
          ...(q.get("host") ? { host: q.get("host") as string } : {}),
          ...(q.get("operator") ? { operator: q.get("operator") as string } : {}),
          ...(since !== undefined ? { since } : {}),
          ...(op.fleets !== null ? { fleets: [...op.fleets] } : {}),
          limit,
          order: "desc",
        });
        sendJson(res, 200, { schema: "clawguard.shield-log/v1", records });
      }),
    },
    "/api/events": {
      GET: read((req, res, _url, op) => {
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
        const send = (d: LiveDecision) => {
          if (op.fleets !== null && (d.fleet === null || !op.fleets.has(d.fleet))) return;
          res.write(`id: ${d.seq}\nevent: decision\ndata: ${JSON.stringify(d)}\n\n`);
        };
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
      }),
    },
    "/metrics": {
      GET: read(async (_req, res, _url, op) => {
        const text = scopeMetrics(op, api.control.cfg, await api.metrics.registry.metrics());
        res.writeHead(200, { ...SECURITY_HEADERS, "content-type": api.metrics.registry.contentType });
        res.end(text);
      }),
    },
  };

  // Enrolling and revoking change the fleet: an operator's in their scope (checked by the routes).
  for (const [p, methods] of Object.entries(enrolRoutes(api)))
    for (const [method, fn] of Object.entries(methods)) ROUTES[p] = { ...ROUTES[p], [method]: change(fn) };

  // Nodes, moves and drains are the shield's own infrastructure, across every fleet: an admin's.
  for (const [p, methods] of Object.entries(storeRoutes(api.store)))
    for (const [method, fn] of Object.entries(methods))
      ROUTES[p] = { ...ROUTES[p], [method]: { need: "admin", fn } };

  return onRequest;
}
