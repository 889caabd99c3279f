import crypto from "node:crypto";
import type { LogRecord } from "../types.js";

/** The hash the first record chains from. */
export const GENESIS_HASH = "0".repeat(64);

/** Bumped only if the canonical serialisation changes; part of every hashed string. */
const CANONICAL_TAG = "clawguard.shield-log/1";

export const DECISIONS = ["allowed", "denied", "audited"] as const;
export type LogDecision = (typeof DECISIONS)[number];

/** A record as stored: the proxy's fields plus its place in the hash chain. */
export interface StoredRecord extends LogRecord {
  id: number;
  prevHash: string;
  hash: string;
}

// Credentials the proxy might quote in a reason ("bad Basic dXNlcjpw..."): scheme plus token.
const CREDENTIAL = /\b(Basic|Bearer|Digest|Negotiate|Token)(\s+)[^\s,;"']+/gi;
const MAYBE_CREDENTIAL = /basic|bearer|digest|negotiate|token|authorization/i;
const AUTH_HEADER = /\b((?:proxy-)?authorization\s*[:=]\s*)[^\r\n,;"']+/gi;

/** Remove anything that looks like a credential from free text before it is stored. */
export function scrubSecrets(text: string): string {
  return MAYBE_CREDENTIAL.test(text)
    ? text.replace(AUTH_HEADER, "$1[redacted]").replace(CREDENTIAL, "$1$2[redacted]")
    : text;
}

// SQLite stores UTF-8: a lone surrogate would come back as U+FFFD and break the record's hash,
// and NUL would cut the text short in some readers. Replace both before hashing.
// eslint-disable-next-line no-control-regex -- NUL is exactly what must be replaced
const UNSTORABLE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\u0000/g;
// eslint-disable-next-line no-control-regex -- as above
const MAYBE_UNSTORABLE = /[\uD800-\uDFFF\u0000]/;

function text(v: unknown, max = 4096): string {
  const s = typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
  const cut = s.length > max ? s.slice(0, max) : s;
  return MAYBE_UNSTORABLE.test(cut) ? cut.replace(UNSTORABLE, "\uFFFD") : cut;
}

function nullableText(v: unknown, max = 4096): string | null {
  return v === null || v === undefined ? null : text(v, max);
}

function count(v: unknown): number {
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) && n > 0 ? Math.min(Math.round(n), Number.MAX_SAFE_INTEGER) : 0;
}

/**
 * Copy a record into the exact shape that is stored and hashed: strings SQLite round-trips
 * unchanged, whole numbers, a known decision, secrets scrubbed from `reason`. Never throws, so
 * `append` cannot fail on a malformed record from the proxy.
 */
export function normaliseRecord(r: LogRecord): LogRecord {
  const decision = (DECISIONS as readonly string[]).includes(r.decision) ? r.decision : "denied";
  const port = count(r.port);
  return {
    ts: count(r.ts),
    agent: nullableText(r.agent, 256),
    fleet: nullableText(r.fleet, 256),
    tier: nullableText(r.tier, 256),
    sourceAddress: text(r.sourceAddress, 64),
    method: text(r.method, 32),
    host: text(r.host, 512).toLowerCase(),
    port: port <= 65535 ? port : 0,
    path: nullableText(r.path),
    decision,
    rule: nullableText(r.rule, 1024),
    reason: scrubSecrets(text(r.reason, 1024)),
    upstreamAddress: nullableText(r.upstreamAddress, 64),
    bytesUp: count(r.bytesUp),
    bytesDown: count(r.bytesDown),
    durationMs: count(r.durationMs),
  };
}

/** The exact bytes that are hashed: every field in a fixed order, the id and the previous hash. */
export function canonicalRecord(id: number, r: LogRecord, prevHash: string): string {
  return JSON.stringify([CANONICAL_TAG, id, ...recordFields(r), prevHash]);
}

/** A record's fields in the order the chain hashes them. */
export function recordFields(r: LogRecord): RecordFields {
  return [
    r.ts,
    r.agent,
    r.fleet,
    r.tier,
    r.sourceAddress,
    r.method,
    r.host,
    r.port,
    r.path,
    r.decision,
    r.rule,
    r.reason,
    r.upstreamAddress,
    r.bytesUp,
    r.bytesDown,
    r.durationMs,
  ];
}

/**
 * A record's fields in the order `canonicalRecord` hashes them, as JSON: how a record travels to
 * the writer thread. It holds no line break, since JSON escapes them inside strings, so a batch
 * is its records' lines joined by "\n".
 */
export function recordLine(r: LogRecord): string {
  return JSON.stringify(recordFields(r));
}

/** A record's fields up to the destination's host, and those after it. */
type FieldsToHost = [
  ts: number,
  agent: string | null,
  fleet: string | null,
  tier: string | null,
  sourceAddress: string,
  method: string,
  host: string,
];
type FieldsAfterHost = [
  port: number,
  path: string | null,
  decision: LogDecision,
  rule: string | null,
  reason: string,
  upstreamAddress: string | null,
  bytesUp: number,
  bytesDown: number,
  durationMs: number,
];

/** What `JSON.parse(recordLine(r))` gives back. */
export type RecordFields = [...FieldsToHost, ...FieldsAfterHost];

/**
 * The columns a record is stored in, SQLite's log and PostgreSQL's alike, in the order
 * `recordRow` gives their values. The one encoding of a record into stored columns: both writers
 * insert `recordRow(...)` under these names, and readers asking for them in this order get a
 * `RecordRow` back.
 */
export const RECORD_COLUMNS = [
  "id",
  "ts",
  "agent",
  "fleet",
  "tier",
  "source_address",
  "method",
  "host",
  "host_rev",
  "port",
  "path",
  "decision",
  "rule",
  "reason",
  "upstream_address",
  "bytes_up",
  "bytes_down",
  "duration_ms",
  "prev_hash",
  "hash",
] as const;

/** A stored record's values, column by column as `RECORD_COLUMNS` names them. */
export type RecordRow = [
  id: number,
  ...FieldsToHost,
  hostRev: string,
  ...FieldsAfterHost,
  prevHash: string,
  hash: string,
];

// One value per column: the type fails to compile when the two lists drift apart.
const _oneValuePerColumn: RecordRow["length"] = RECORD_COLUMNS.length;

/** The values stored for record `id` with fields `f`, chained from `prevHash` to `hash`. */
export function recordRow(id: number, f: RecordFields, prevHash: string, hash: string): RecordRow {
  return [
    id,
    f[0],
    f[1],
    f[2],
    f[3],
    f[4],
    f[5],
    f[6],
    reverseHost(f[6]),
    f[7],
    f[8],
    f[9],
    f[10],
    f[11],
    f[12],
    f[13],
    f[14],
    f[15],
    prevHash,
    hash,
  ];
}

const CANONICAL_HEAD = `[${JSON.stringify(CANONICAL_TAG)},`;

/**
 * `canonicalRecord(id, r, prevHash)` built from `recordLine(r)` without serialising the record
 * again: JSON.stringify joins array items with "," and adds nothing else, so splicing the line's
 * items between the id and the previous hash gives the same text.
 */
export function canonicalFromLine(id: number, line: string, prevHash: string): string {
  return `${CANONICAL_HEAD}${JSON.stringify(id)},${line.slice(1, -1)},${JSON.stringify(prevHash)}]`;
}

/** SHA-256 in hex; the one-shot `crypto.hash` (Node >= 20.12) skips a Hash object per record. */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "hex")
    : (text) => crypto.createHash("sha256").update(text).digest("hex");

export function recordHash(id: number, r: LogRecord, prevHash: string): string {
  return sha256Hex(canonicalRecord(id, r, prevHash));
}

/** `recordHash(id, r, prevHash)` from `recordLine(r)`. */
export function lineHash(id: number, line: string, prevHash: string): string {
  return sha256Hex(canonicalFromLine(id, line, prevHash));
}

/** Reversed host, indexed so that `*.example.com` is a range scan instead of a table scan. */
export function reverseHost(host: string): string {
  // By code point, as `[...host].reverse().join("")` (stored logs hold that), in half the time:
  // a surrogate pair stays in order, a lone surrogate moves as one unit.
  let out = "";
  for (let i = host.length - 1; i >= 0; i--) {
    const c = host.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const hi = host.charCodeAt(i - 1);
      if (hi >= 0xd800 && hi <= 0xdbff) {
        out += host.slice(i - 1, i + 1);
        i -= 1;
        continue;
      }
    }
    out += host[i];
  }
  return out;
}
