/** The admin listener's HTTP plumbing: JSON in and out, errors as statuses, static files. */
import type http from "node:http";
import type { z } from "zod";

/** Largest JSON body the API reads. */
export const MAX_BODY = 64 * 1024;

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
};

/** An answer other than 2xx: its status, the field of the request it is about, and why. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly field: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** Run at most `n` of the functions given at once, the others in the order they came. */
export function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (running >= n) await new Promise<void>((go) => waiting.push(go));
    else running += 1;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next in line, or free it.
      const next = waiting.shift();
      if (next) next();
      else running -= 1;
    }
  };
}

export function staticFile(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: string,
  type: string,
): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    throw new HttpError(405, null, `${req.method} is not supported here`);
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "content-security-policy": CSP,
    "content-type": type,
    "content-length": Buffer.byteLength(body),
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(value, null, 2) + "\n";
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

export async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > MAX_BODY) {
    req.resume();
    throw new HttpError(413, "body", `the body is larger than ${MAX_BODY} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) {
      req.resume();
      throw new HttpError(413, "body", `the body is larger than ${MAX_BODY} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new HttpError(400, "body", "expected a JSON object in the body");
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new HttpError(400, "body", `the body is not JSON: ${(e as Error).message}`);
  }
}

export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0] as z.core.$ZodIssue;
  let field = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") field = issue.keys[0] ?? field;
  const known = issue.code === "invalid_value" ? ` (one of ${issue.values.map(String).join(", ")})` : "";
  throw new HttpError(400, field || "body", `${field || "body"}: ${issue.message}${known}`);
}

export function pathOf(req: http.IncomingMessage): string {
  return (req.url ?? "/").replace(/\?.*$/, "");
}
