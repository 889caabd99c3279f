/**
 * The admin API's routes that watch: the audit log (a scoped operator's own fleets' records),
 * the live stream of decisions, and the Prometheus metrics (their labels scoped alike).
 */
import { DECISIONS } from "../log/index.js";
import type { LiveDecision } from "./control.js";
import { HttpError, SECURITY_HEADERS, sendJson } from "./http.js";
import { read, type Routes } from "./route.js";
import { scopeMetrics } from "./scope.js";
import type { AdminApi } from "./server.js";

const MAX_STREAMS = 32;
const HEARTBEAT_MS = 15_000;

export function watchRoutes(api: AdminApi): Routes {
  let streams = 0;
  return {
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
}
