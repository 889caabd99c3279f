import type { LogRecord } from "../../src/shield/types.js";

/** A plausible record; `i` varies agent, decision, host and time so queries have something to pick. */
export function record(i: number, over: Partial<LogRecord> = {}): LogRecord {
  const decisions = ["allowed", "denied", "audited"] as const;
  return {
    ts: 1_700_000_000_000 + i * 1000,
    agent: `agent-${i % 3}`,
    fleet: "acme",
    tier: "crew",
    sourceAddress: `10.0.0.${(i % 200) + 1}`,
    method: i % 2 ? "CONNECT" : "GET",
    host: i % 4 === 0 ? "api.openai.com" : i % 4 === 1 ? "x.api.anthropic.com" : "pastebin.com",
    port: 443,
    path: i % 2 ? null : `/v1/items/${i}`,
    decision: decisions[i % 3]!,
    rule: i % 3 === 1 ? null : "tier:crew allow api.openai.com",
    reason: `request ${i}`,
    upstreamAddress: i % 3 === 1 ? null : "203.0.113.7",
    bytesUp: i * 10,
    bytesDown: i * 100,
    durationMs: i % 50,
    ...over,
  };
}
