/**
 * Enrolling and revoking WireGuard agents through the admin API: an operator into the fleets of
 * their scope, an admin anywhere. The decision is enrolment.ts's, as for `shield enroll`; the
 * shield makes it as its other config edits (the text, validated, written, applied at once) and
 * root's sync daemon puts the file's peers on the interface. The membership record the shield
 * logs as it applies the edit names the operator. A preshared key is root's to write: the API
 * refuses one and says where to make it.
 */
import type http from "node:http";
import { z } from "zod";
import { ClawguardError, ConfigError } from "../../errors.js";
import { readShieldDocument, shieldConfigOf, type ShieldConfig } from "../config.js";
import type { Authors } from "../membership.js";
import {
  agentsEditText,
  checkPublicKey,
  EnrolRefused,
  joinCodeOf,
  joinExpiryMs,
  planEnrolment,
  planRevocation,
  sshAccessFor,
  type EnrolField,
  type EnrolPlan,
} from "../wireguard/enrolment.js";
import { generateKeyPair } from "../wireguard/keys.js";
import { StatusReader } from "../wireguard/status.js";
import type { GrantAuthority } from "../ssh/ca.js";
import type { StoreAdmin } from "./store-routes.js";
import { seesFleet, unscoped, type Operator } from "./access.js";
import { visibleAgent } from "./scope.js";
import { HttpError, parse, readJson, sendJson } from "./http.js";

/** What the enrolment routes ask of the shield (server.ts's AdminApi has all of it). */
export interface EnrolApi {
  control: { cfg: ShieldConfig };
  editConfig(
    trigger: string,
    edit: (text: string) => string,
    field: string,
    authors?: Authors,
  ): Promise<{ tunnelsClosed: number }>;
  store?: StoreAdmin;
  sshCa?: GrantAuthority;
}

type Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  op: Operator,
) => Promise<void> | void;

const name = z.string().min(1).max(128);
const enrolSchema = z.strictObject({
  id: name,
  fleet: name.optional(),
  tier: name.optional(),
  publicKey: z.string().min(1).max(128).optional(),
  presharedKey: z.boolean().optional(),
  endpoint: z.string().min(1).max(300).optional(),
  expires: z.string().min(1).max(32).optional(),
});
const revokeSchema = z.strictObject({ id: name });

/** Refusals name the body's keys. */
const API_SPELLING = (f: EnrolField): string => f;

/** The shield's WireGuard public key, from the status root's sync daemon publishes. */
async function shieldPublicKey(cfg: ShieldConfig): Promise<string> {
  const wg = cfg.wireguard;
  if (!wg)
    throw new HttpError(
      409,
      null,
      `${cfg.file} has no wireguard section: set up the interface first (clawguard shield install --wireguard --endpoint HOST:PORT)`,
    );
  const status = await new StatusReader(wg.statusFile, 0).read();
  if (!status?.publicKey)
    throw new HttpError(
      409,
      null,
      `the shield's WireGuard public key is not known: the sync daemon publishes it in ${wg.statusFile} once ${wg.interface} is up (systemctl start wg-quick@${wg.interface}; clawguard shield wireguard-sync --config ${cfg.file} --once)`,
    );
  return status.publicKey;
}

/** The config being edited, parsed as the file is. */
function editing(text: string, file: string) {
  const { doc, lines } = readShieldDocument(text, file);
  return { cfg: shieldConfigOf(doc, lines, file) };
}

/**
 * A refusal of the shared decision (a conflict with the config as it is: the id or key taken, a
 * rotation that would change the fleet; a bad endpoint is the request's own), as the API answers it.
 */
function asHttp(e: unknown): unknown {
  if (e instanceof HttpError) return e;
  if (e instanceof EnrolRefused) return new HttpError(e.field === "endpoint" ? 400 : 409, e.field, e.message);
  if (e instanceof ConfigError) return new HttpError(409, null, e.message);
  if (e instanceof ClawguardError) return new HttpError(409, null, e.message);
  return e;
}

function noStore(store: StoreAdmin | undefined): void {
  if (store)
    throw new HttpError(
      409,
      null,
      "this shield shares a store, which holds the agents of every node: enrol in the store's policy, revoke with DELETE /api/agents",
    );
}

export function enrolRoutes(api: EnrolApi): Record<string, Record<string, Handler>> {
  const file = () => api.control.cfg.file;
  const byOperator =
    (op: Operator, id: string): Authors =>
    (agent) =>
      agent === id ? { operator: op.name } : null;

  const enrol: Handler = async (req, res, _url, op) => {
    const body = parse(enrolSchema, await readJson(req));
    noStore(api.store);
    if (body.presharedKey)
      throw new HttpError(
        400,
        "presharedKey",
        "a preshared key lives in a root-only file the shield cannot write: enrol with clawguard shield enroll --preshared-key on the shield host",
      );
    const expiresMs = joinExpiryMs(body.expires ?? "24h");
    if (expiresMs === null)
      throw new HttpError(
        400,
        "expires",
        `"${body.expires}" is not a duration from 1m to 30d (e.g. 30m, 24h, 7d)`,
      );
    let own: string | null = null;
    try {
      own = body.publicKey !== undefined ? checkPublicKey(body.publicKey, API_SPELLING) : null;
    } catch (e) {
      if (e instanceof EnrolRefused) throw new HttpError(400, e.field, e.message);
      throw e;
    }
    const shieldKey = await shieldPublicKey(api.control.cfg);
    const pair = own === null ? generateKeyPair() : null;
    const publicKey = own ?? pair!.publicKey;
    let plan: EnrolPlan | null = null;
    let cfgEdited: ShieldConfig | null = null;
    await api
      .editConfig(
        `api enroll ${body.id} by ${op.name}`,
        (text) => {
          try {
            const { cfg } = editing(text, file());
            // Scope is checked against the text being edited, not the config last applied.
            if (
              body.fleet !== undefined &&
              !(Object.hasOwn(cfg.fleets, body.fleet) && seesFleet(op, body.fleet))
            )
              throw new HttpError(404, "fleet", `unknown fleet "${body.fleet}"`);
            if (body.tier !== undefined && !Object.hasOwn(cfg.tiers, body.tier))
              throw new HttpError(404, "tier", `unknown tier "${body.tier}"`);
            const existing = cfg.agents.find((a) => a.id === body.id);
            // The id is taken by an agent they do not see: say no more than that.
            if (existing && !visibleAgent(op, cfg, body.id))
              throw new HttpError(409, "id", `the id "${body.id}" is taken; pick another`);
            // An agent in no fleet would be out of their sight; a new key keeps the agent's fleet.
            if (!unscoped(op) && body.fleet === undefined && !existing)
              throw new HttpError(
                400,
                "fleet",
                `${op.name} enrols into fleets ${[...op.fleets!].join(", ")} only: give one as fleet`,
              );
            const decided = planEnrolment(
              cfg,
              {
                id: body.id,
                ...(body.endpoint !== undefined ? { endpoint: body.endpoint } : {}),
                ...(body.fleet !== undefined ? { fleet: body.fleet } : {}),
                ...(body.tier !== undefined ? { tier: body.tier } : {}),
                publicKey,
                ownKey: own !== null,
              },
              API_SPELLING,
            );
            plan = decided.plan;
            cfgEdited = cfg;
            return agentsEditText(text, file(), decided.edit);
          } catch (e) {
            throw asHttp(e);
          }
        },
        "agents",
        byOperator(op, body.id),
      )
      .catch((e: unknown) => Promise.reject(asHttp(e)));
    const done = plan as EnrolPlan | null;
    if (done === null || cfgEdited === null) throw new Error("the enrolment edit did not run");
    const ca = api.sshCa ? await api.sshCa.caPublicKey() : null;
    const expires = Math.floor((Date.now() + expiresMs) / 1000);
    const join = joinCodeOf(done, {
      agent: body.id,
      shieldPublicKey: shieldKey,
      ...(pair ? { privateKey: pair.privateKey } : {}),
      expires,
      ...sshAccessFor(cfgEdited, ca),
    });
    sendJson(res, 201, {
      schema: "clawguard.shield-enroll/v1",
      ok: true,
      agent: body.id,
      addresses: done.addresses,
      publicKey,
      rotated: done.replaced !== undefined,
      expires: new Date(expires * 1000).toISOString(),
      join,
    });
  };

  const revoke: Handler = async (req, res, _url, op) => {
    const body = parse(revokeSchema, await readJson(req));
    noStore(api.store);
    let addresses: string[] = [];
    const r = await api
      .editConfig(
        `api revoke ${body.id} by ${op.name}`,
        (text) => {
          try {
            const { cfg } = editing(text, file());
            // An agent they do not see is absent, as an unknown one.
            if (!visibleAgent(op, cfg, body.id)) throw new HttpError(404, "id", `unknown agent "${body.id}"`);
            const { agent, edit } = planRevocation(cfg, body.id);
            addresses = agent.sources ?? [];
            return agentsEditText(text, file(), edit);
          } catch (e) {
            throw asHttp(e);
          }
        },
        "agents",
        byOperator(op, body.id),
      )
      .catch((e: unknown) => Promise.reject(asHttp(e)));
    sendJson(res, 200, {
      schema: "clawguard.shield-revoke/v1",
      ok: true,
      agent: body.id,
      addresses,
      tunnelsClosed: r.tunnelsClosed,
    });
  };

  return {
    "/api/agents/enroll": { POST: enrol },
    "/api/agents/revoke": { POST: revoke },
  };
}
