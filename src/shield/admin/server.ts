/**
 * The operator's HTTP API, metrics and dashboard, on a listener of its own (never the proxy's).
 * Everything under /api and /metrics needs the bearer token; the dashboard's static files do
 * not (they hold no data and ask for the token in the browser).
 */
import type http from "node:http";
import { z } from "zod";
import { changeRecord, type ChangeKind, type LogFilter, type StoredRecord } from "../log/index.js";
import type { ChangeTarget } from "../log/changes.js";
import type { Resolver } from "../net/resolve.js";
import type { LogRecord, Mode } from "../types.js";
import { ControlError, type ShieldControl } from "./control.js";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard/assets.js";
import type { ShieldMetrics } from "./metrics.js";
import { storeRoutes, type StoreAdmin } from "./store-routes.js";
import { enrolRoutes } from "./enrol-routes.js";
import { accessRoutes } from "./access-routes.js";
import { policyRoutes } from "./policy-routes.js";
import { watchRoutes } from "./watch-routes.js";
import { change, read, targetOf, where, type Routes } from "./route.js";
import type { Authors } from "../membership.js";
import type { AgentTunnel } from "../wireguard/status.js";
import type { ReloadOutcome } from "../reload.js";
import type { RuleEdit } from "./rules-file.js";
import { may, OperatorTokens, unscoped, type Need, type Operator } from "./access.js";
import type { GrantAuthority } from "../ssh/ca.js";
import { scopeModes, visibleAgent, visibleFleet } from "./scope.js";
import { HttpError, parse, pathOf, readJson, SECURITY_HEADERS, sendJson, staticFile } from "./http.js";

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

const modeSchema = z.strictObject({
  scope: z.enum(["global", "fleet", "agent"]),
  id: z.string().min(1).max(128).optional(),
  mode: z.enum(["enforce", "audit", "lockdown"]).nullable(),
});

const NEED_ROLE: Record<Need, string> = {
  read: "a viewer or above",
  change: "an operator or an admin",
  admin: "an admin",
};

/** The admin listener's request handler. */
export function createAdminHandler(
  api: AdminApi,
): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const changed = (op: Operator, kind: ChangeKind, target: ChangeTarget, reason: string) =>
    api.record(changeRecord(op.name, kind, target, reason));

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

  const ROUTES: Routes = {
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
    ...accessRoutes(api, changed),
    ...policyRoutes(api, changed),
    ...watchRoutes(api),
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
