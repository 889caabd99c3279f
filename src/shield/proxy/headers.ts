import type { IncomingHttpHeaders } from "node:http";

/** RFC 9110 §7.6.1: meaningful for one connection only, never forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Headers that would tell the destination who is behind the shield, or that it exists. */
const MASKED_EXACT = new Set(["via", "forwarded", "x-real-ip", "client-ip", "true-client-ip", "x-client-ip"]);
const MASKED_PREFIXES = ["proxy-", "x-forwarded-", "x-agent-"];

export function isMasked(name: string, extra: ReadonlySet<string>): boolean {
  if (MASKED_EXACT.has(name) || extra.has(name)) return true;
  return MASKED_PREFIXES.some((p) => name.startsWith(p));
}

/** Names listed in a Connection header are hop-by-hop for this message too. */
function connectionTokens(headers: Record<string, string[] | undefined>): Set<string> {
  const out = new Set<string>();
  for (const value of headers["connection"] ?? []) {
    for (const token of value.split(",")) {
      const t = token.trim().toLowerCase();
      if (t) out.add(t);
    }
  }
  return out;
}

/**
 * The request headers to send upstream: hop-by-hop and masking headers removed, `host` set to
 * the authority the client asked for. With `upgrade`, the Upgrade/Connection pair survives so a
 * WebSocket handshake still means what it said.
 */
export function upstreamRequestHeaders(
  distinct: Record<string, string[] | undefined>,
  host: string,
  extraMasked: ReadonlySet<string>,
  upgrade: boolean,
): Record<string, string[] | string> {
  const listed = connectionTokens(distinct);
  const out: Record<string, string[] | string> = {};
  for (const [name, values] of Object.entries(distinct)) {
    if (values === undefined || name === "host") continue;
    if (HOP_BY_HOP.has(name) || listed.has(name) || isMasked(name, extraMasked)) continue;
    out[name] = values;
  }
  out["host"] = host;
  if (upgrade) {
    const up = distinct["upgrade"];
    if (up) {
      out["upgrade"] = up;
      out["connection"] = "Upgrade";
    }
  }
  return out;
}

/** The response headers to return to the client: hop-by-hop removed, the rest as sent. */
export function downstreamResponseHeaders(
  distinct: Record<string, string[] | undefined>,
  extraMasked: ReadonlySet<string>,
): Record<string, string[]> {
  const listed = connectionTokens(distinct);
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(distinct)) {
    if (values === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed.has(name) || name.startsWith("proxy-") || extraMasked.has(name))
      continue;
    out[name] = values;
  }
  return out;
}

/** `Proxy-Authorization: Basic base64(user:pass)`, or undefined when absent or malformed. */
export function parseProxyBasic(headers: IncomingHttpHeaders): { user: string; pass: string } | undefined {
  const value = headers["proxy-authorization"];
  if (typeof value !== "string") return undefined;
  const m = /^basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(value);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

/**
 * Smuggling guard, on top of Node's strict parser: a message framed two ways, or with
 * Content-Length values that disagree, means the shield and the destination could split the
 * byte stream differently.
 */
export function ambiguousFraming(distinct: Record<string, string[] | undefined>): string | null {
  const cl = distinct["content-length"];
  const te = distinct["transfer-encoding"];
  if (cl && te) return "both Content-Length and Transfer-Encoding";
  if (cl) {
    const values = new Set(cl.flatMap((v) => v.split(",")).map((v) => v.trim()));
    if (values.size !== 1) return "conflicting Content-Length values";
    const [only] = values;
    if (!/^\d+$/.test(only!)) return "invalid Content-Length";
  }
  if (te) {
    const codings = te.flatMap((v) => v.split(",")).map((v) => v.trim().toLowerCase());
    if (codings[codings.length - 1] !== "chunked") return "Transfer-Encoding that does not end in chunked";
  }
  return null;
}
