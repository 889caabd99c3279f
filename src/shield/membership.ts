/**
 * Who joined and who left, as records of the shield's own audit log. Agents are enrolled and
 * revoked by editing shield.yaml (through the admin API, by `shield enroll` and `shield revoke`,
 * by hand), but only the shield writes its log: so the shield records each change when it
 * applies the config that carries it, in the same hash chain as every decision, naming who
 * made it when that is known. Pure.
 */
import type { AgentConfig, ShieldConfig } from "./config.js";
import { MEMBERSHIP_METHODS, operatorRule } from "./log/changes.js";
import type { LogRecord } from "./types.js";

export { MEMBERSHIP_METHODS };

/**
 * Who changed one agent: an operator of the admin API (the record's `rule` names them, as a
 * change record's does, so `shield log --operator` finds it) or a user of the shield host who
 * ran the CLI there (named in the reason: not an operator of the API).
 */
export type Author = { operator: string } | { user: string; via: string };

/**
 * Who changed each agent of an applied config; null for an agent nobody claims (an edit by
 * hand). Absent from the context when the config did not come from the file (a store revision).
 */
export type Authors = (agent: string) => Author | null;

export interface MembershipContext {
  at: number;
  /** What made the shield apply the config: "file change", "SIGHUP", "api add rule". */
  trigger: string;
  /** Tunnels the agent had open before the config was applied (closed now, if it left). */
  openTunnels: (agent: string) => number;
  authors?: Authors;
}

function record(
  a: AgentConfig,
  method: string,
  decision: LogRecord["decision"],
  reason: string,
  at: number,
  author: Author | null,
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
    rule: author && "operator" in author ? operatorRule(author.operator) : null,
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

/** The trigger, and who made the change when the config came from the file. */
function cause(ctx: MembershipContext, author: Author | null): string {
  if (!ctx.authors) return ctx.trigger;
  if (author === null) return `${ctx.trigger}; by hand`;
  // The API's trigger names its operator already ("api enroll scout by alice").
  if ("operator" in author)
    return ctx.trigger.endsWith(` by ${author.operator}`)
      ? ctx.trigger
      : `${ctx.trigger}; by operator ${author.operator}`;
  return `${ctx.trigger}; ${author.via} by local user ${author.user}`;
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
  const by = (id: string) => ctx.authors?.(id) ?? null;
  for (const [id, a] of old) {
    if (now.has(id)) continue;
    const n = ctx.openTunnels(id);
    const who = by(id);
    out.push(
      record(
        a,
        MEMBERSHIP_METHODS.left,
        "denied",
        `revoked: agent left ${file} (${cause(ctx, who)}); ${n} open tunnel(s) closed; ${key(a)} no longer admitted`,
        ctx.at,
        who,
      ),
    );
  }
  for (const [id, a] of now) {
    const was = old.get(id);
    const who = by(id);
    if (!was)
      out.push(
        record(
          a,
          MEMBERSHIP_METHODS.joined,
          "allowed",
          `enrolled: agent joined ${file} (${cause(ctx, who)}) with ${key(a)}`,
          ctx.at,
          who,
        ),
      );
    else if (was.wireguard?.publicKey !== a.wireguard?.publicKey)
      out.push(
        record(
          a,
          MEMBERSHIP_METHODS.rekeyed,
          "allowed",
          `new key: ${key(a)} replaces ${was.wireguard?.publicKey ?? "none"} (${cause(ctx, who)})`,
          ctx.at,
          who,
        ),
      );
  }
  return out;
}
