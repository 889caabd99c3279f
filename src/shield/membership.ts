/**
 * Who joined and who left, as records of the shield's own audit log. Agents are enrolled and
 * revoked by editing shield.yaml (by hand, by `shield enroll` and `shield revoke`, from any
 * process), but only the shield writes its log: so the shield records each change when it
 * applies the config that carries it, in the same hash chain as every decision. Pure.
 */
import type { AgentConfig, ShieldConfig } from "./config.js";
import type { LogRecord } from "./types.js";

/** The log's method for each kind of change; no HTTP method is spelled like these. */
export const MEMBERSHIP_METHODS = { joined: "ENROL", left: "REVOKE", rekeyed: "REKEY" } as const;

export interface MembershipContext {
  at: number;
  /** What made the shield apply the config: "file change", "SIGHUP", "api add rule". */
  trigger: string;
  /** Tunnels the agent had open before the config was applied (closed now, if it left). */
  openTunnels: (agent: string) => number;
}

function record(
  a: AgentConfig,
  method: string,
  decision: LogRecord["decision"],
  reason: string,
  at: number,
): LogRecord {
  return {
    ts: at,
    agent: a.id,
    fleet: a.fleet ?? null,
    tier: a.tier ?? null,
    sourceAddress: a.sources?.[0]?.replace(/\/\d+$/, "") ?? "",
    method,
    host: "",
    port: 0,
    path: null,
    decision,
    rule: null,
    reason,
    upstreamAddress: null,
    bytesUp: 0,
    bytesDown: 0,
    durationMs: 0,
  };
}

function key(a: AgentConfig): string {
  return a.wireguard ? `WireGuard key ${a.wireguard.publicKey}` : "no WireGuard key";
}

/** One record per agent that joined, left or got a new WireGuard key between two configs. */
export function membershipRecords(
  before: ShieldConfig,
  after: ShieldConfig,
  ctx: MembershipContext,
): LogRecord[] {
  const old = new Map(before.agents.map((a) => [a.id, a]));
  const now = new Map(after.agents.map((a) => [a.id, a]));
  const file = after.file;
  const out: LogRecord[] = [];
  for (const [id, a] of old) {
    if (now.has(id)) continue;
    const n = ctx.openTunnels(id);
    out.push(
      record(
        a,
        MEMBERSHIP_METHODS.left,
        "denied",
        `revoked: agent left ${file} (${ctx.trigger}); ${n} open tunnel(s) closed; ${key(a)} no longer admitted`,
        ctx.at,
      ),
    );
  }
  for (const [id, a] of now) {
    const was = old.get(id);
    if (!was)
      out.push(
        record(
          a,
          MEMBERSHIP_METHODS.joined,
          "allowed",
          `enrolled: agent joined ${file} (${ctx.trigger}) with ${key(a)}`,
          ctx.at,
        ),
      );
    else if (was.wireguard?.publicKey !== a.wireguard?.publicKey)
      out.push(
        record(
          a,
          MEMBERSHIP_METHODS.rekeyed,
          "allowed",
          `new key: ${key(a)} replaces ${was.wireguard?.publicKey ?? "none"} (${ctx.trigger})`,
          ctx.at,
        ),
      );
  }
  return out;
}
