/**
 * The contracts between the shield's parts: config -> policy -> proxy -> log. Each part lives
 * in its own folder and depends only on these types, so the decision stays a pure function and
 * the data path never waits on the log.
 */

export type Mode = "enforce" | "audit" | "lockdown";
export type Isolation = "isolated" | "fleet";

/** A destination after normalisation: lowercase, no trailing dot, punycode, IP literals canonical. */
export interface Target {
  /** Canonical host: a punycode DNS name, or an IP address in canonical text form. */
  host: string;
  port: number;
  /** Set when `host` is an IP literal (in any spelling the client used). */
  ip?: { address: string; family: 4 | 6 };
}

/** Who is calling, as established by the proxy from credentials and source address only. */
export interface Agent {
  id: string;
  fleet?: string;
  tier?: string;
}

/**
 * What one agent may send in a sliding window, from one level of the config. Every level that
 * sets a budget holds on its own, each counting only this agent's traffic, or (shared) the
 * traffic of every agent under the level.
 */
export interface BudgetLimit {
  /** The level that set it: "global", "tier:crew", "fleet:acme" or "agent:scout". */
  scope: string;
  /** One budget for all the level's agents together, instead of one each. */
  shared?: boolean;
  /** Bytes the agent sends: request heads and bodies, and every byte up a tunnel. */
  uploadBytes?: number;
  /** Requests and tunnels opened. */
  requests?: number;
  windowMs: number;
  /** The budget as written, for reasons and views: "upload 50MB, 1000 requests per 1h". */
  text: string;
}

export type Verdict = "allow" | "deny";

/** The policy's answer for one (agent, target). */
export interface Decision {
  /** What the proxy does. In audit mode a would-be deny is `allow` with `audited: true`. */
  verdict: Verdict;
  /** True when audit mode turned a deny into an allow. */
  audited: boolean;
  /** Effective mode for this agent (lockdown anywhere wins, then audit, then enforce). */
  mode: Mode;
  /** The rule that decided, e.g. "tier:crew allow *.anthropic.com:443", or null for the default. */
  rule: string | null;
  /** Human reason, for the log only (never sent to the client). */
  reason: string;
}

/** What the proxy logs for every decision: one record per request or tunnel. */
export interface LogRecord {
  /** Milliseconds since the epoch when the request arrived. */
  ts: number;
  agent: string | null;
  fleet: string | null;
  tier: string | null;
  sourceAddress: string;
  method: string;
  host: string;
  port: number;
  /** Path (no query string) for plain HTTP; null for CONNECT. */
  path: string | null;
  decision: "allowed" | "denied" | "audited";
  rule: string | null;
  reason: string;
  /** The address actually dialled, when one was. */
  upstreamAddress: string | null;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
}

/** The log store as the proxy sees it: append never blocks or throws on the data path. */
export interface LogSink {
  append(record: LogRecord): void;
  /** Resolves once every appended record is durably committed. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
