/**
 * Header handling works on `rawHeaders` (name, value, name, value, ...) as the parser produced
 * it: one pass, no per-request object of arrays, and the result is again a flat list that the
 * shield's HTTP/1.1 client and server (upstream.ts, front.ts) write out as is.
 */

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

export function isMasked(name: string, extra: ReadonlySet<string>): boolean {
  if (MASKED_EXACT.has(name) || extra.has(name)) return true;
  return name.startsWith("proxy-") || name.startsWith("x-forwarded-") || name.startsWith("x-agent-");
}

/** Names listed in Connection headers are hop-by-hop for this message too; null when there are none. */
function connectionTokens(raw: readonly string[]): Set<string> | null {
  let out: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 10 || raw[i]!.toLowerCase() !== "connection") continue;
    for (const token of raw[i + 1]!.split(",")) {
      const t = token.trim().toLowerCase();
      if (t) (out ??= new Set()).add(t);
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
  raw: readonly string[],
  host: string,
  extraMasked: ReadonlySet<string>,
  upgrade: boolean,
): string[] {
  const listed = connectionTokens(raw);
  const out = ["Host", host];
  let upgradeValue: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === "upgrade") upgradeValue ??= raw[i + 1]!;
    if (name === "host" || HOP_BY_HOP.has(name) || listed?.has(name) || isMasked(name, extraMasked)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  if (upgrade && upgradeValue !== null) out.push("Upgrade", upgradeValue, "Connection", "Upgrade");
  return out;
}

/** The response headers to return to the client: hop-by-hop removed, the rest as sent. */
export function downstreamResponseHeaders(
  raw: readonly string[],
  extraMasked: ReadonlySet<string>,
): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || listed?.has(name) || name.startsWith("proxy-") || extraMasked.has(name))
      continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** `Proxy-Authorization: Basic base64(user:pass)`, or undefined when absent or malformed. */
export function parseProxyBasic(raw: readonly string[]): { user: string; pass: string } | undefined {
  let value: string | undefined;
  // The first one counts, as for Node's `headers`: a second cannot override it.
  for (let i = 0; i < raw.length && value === undefined; i += 2) {
    if (raw[i]!.length === 19 && raw[i]!.toLowerCase() === "proxy-authorization") value = raw[i + 1];
  }
  if (value === undefined) return undefined;
  const m = /^basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(value);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}
