/**
 * The admin API's access routes: operators (an admin's) and SSH access grants (an operator's,
 * in their scope). Each change is a record of the log naming who made it.
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { ROLES, TOKEN_FILE_OPERATOR } from "../config-operators.js";
import { asHttp, checkGrant, grantFor, grantSchema, listGrants } from "./grants.js";
import { HttpError, parse, readJson, sendJson } from "./http.js";
import { addOperatorText, removeOperatorText } from "./operators-file.js";
import { admin, change, read, type Changed, type Routes } from "./route.js";
import type { AdminApi } from "./server.js";

const operatorSchema = z.strictObject({
  name: z.string().min(1).max(64),
  role: z.enum(ROLES),
  fleets: z.array(z.string().min(1).max(128)).min(1).max(256).optional(),
});

export function accessRoutes(api: AdminApi, changed: Changed): Routes {
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
  return {
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
  };
}
