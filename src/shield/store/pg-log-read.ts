/**
 * Reading every node's records from PostgreSQL together: `shield log` and /api/log query them as
 * one log (newest first by time), and `verify-log` walks each node's chain on its own, from its
 * checkpoint to its head, naming the node and the record where one breaks.
 */
import type pg from "pg";
import { DECISIONS, recordHash, reverseHost } from "../log/record.js";
import type { LogFilter } from "../log/query.js";
import { changeMethods, operatorRule } from "../log/changes.js";
import { LogError } from "../log/schema.js";
import type { ChainRecord } from "./pg-log.js";
import { checkout } from "./schema.js";

function fromRow(r: Record<string, unknown>): ChainRecord & { seq: number } {
  return {
    node: r.node as string,
    id: Number(r.id),
    seq: Number(r.seq),
    ts: Number(r.ts),
    agent: r.agent as string | null,
    fleet: r.fleet as string | null,
    tier: r.tier as string | null,
    sourceAddress: r.source_address as string,
    method: r.method as string,
    host: r.host as string,
    port: Number(r.port),
    path: r.path as string | null,
    decision: r.decision as ChainRecord["decision"],
    rule: r.rule as string | null,
    reason: r.reason as string,
    upstreamAddress: r.upstream_address as string | null,
    bytesUp: Number(r.bytes_up),
    bytesDown: Number(r.bytes_down),
    durationMs: Number(r.duration_ms),
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}

export type SharedRecord = ReturnType<typeof fromRow>;

/**
 * The query `querySharedLog` runs for a filter. Each form it takes is served by an index of the
 * table (test/pg/plans.test.ts reads the plans): a listing by time walks (ts) or (agent, ts), a
 * host by (host_rev, ts) (an exact host too, as its reversed form, with the host itself checked),
 * a follow the newest end of the arrival sequence (seq).
 */
export function sharedLogQuery(f: LogFilter & { node?: string }): { text: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const arg = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  if (f.node !== undefined) where.push(`node = ${arg(f.node)}`);
  if (f.agent !== undefined) where.push(`agent = ${arg(f.agent)}`);
  // An operator's scope: records of agents in their fleets, none of no fleet (as the local log reads it).
  if (f.fleets !== undefined)
    where.push(f.fleets.length === 0 ? "false" : `fleet = ANY(${arg([...f.fleets])}::text[])`);
  if (f.operator !== undefined)
    where.push(
      `rule = ${arg(operatorRule(f.operator))} AND method = ANY(${arg([...changeMethods()])}::text[])`,
    );
  if (f.decision !== undefined) {
    if (!DECISIONS.includes(f.decision))
      throw new LogError(`decision must be one of ${DECISIONS.join(", ")}, not "${String(f.decision)}"`);
    where.push(`decision = ${arg(f.decision)}`);
  }
  if (f.host !== undefined) {
    const host = f.host.toLowerCase().replace(/\.$/, "");
    if (host.startsWith("*.")) {
      const prefix = reverseHost(host.slice(1));
      where.push(`host_rev >= ${arg(prefix)} AND host_rev < ${arg(prefix.slice(0, -1) + "/")}`);
    } else where.push(`host_rev = ${arg(reverseHost(host))} AND host = ${arg(host)}`);
  }
  if (f.since !== undefined) where.push(`ts >= ${arg(f.since)}`);
  if (f.until !== undefined) where.push(`ts <= ${arg(f.until)}`);
  if (f.afterId !== undefined) where.push(`seq > ${arg(f.afterId)}`);
  const limit = Math.max(1, Math.min(100_000, Math.floor(f.limit ?? 1000)));
  // Following reads in arrival order; a listing reads by the time of the request.
  const order =
    f.afterId !== undefined
      ? "seq ASC"
      : f.order === "desc"
        ? "ts DESC, node, id DESC"
        : "ts ASC, node, id ASC";
  return {
    text: `SELECT * FROM clawguard.log_records${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY ${order} LIMIT ${limit}`,
    values,
  };
}

/** Records of every node matching the filter; `afterId` is the table's arrival sequence here. */
export async function querySharedLog(db: pg.Pool, f: LogFilter & { node?: string }): Promise<SharedRecord[]> {
  const r = await db.query(sharedLogQuery(f));
  return r.rows.map(fromRow);
}

export interface NodeVerdict {
  node: string;
  ok: boolean;
  count: number;
  fromId: number;
  headId: number;
  headHash: string;
  /** The first record that breaks the chain, and why; absent when it verified. */
  firstBadId?: number;
  reason?: string;
}

export interface SharedVerifyResult {
  ok: boolean;
  nodes: NodeVerdict[];
}

const PAGE = 20_000;
/** A page of one node's chain in id order, from the primary key (node, id, part_ts). */
export const CHAIN_PAGE = `SELECT * FROM clawguard.log_records WHERE node = $1 AND id >= $2 ORDER BY id LIMIT ${PAGE}`;

/**
 * Walk each node's chain: ids consecutive from its checkpoint, each prev_hash the hash before it,
 * each hash its contents' and its host index column the host's, and the rows reaching the head
 * the node last wrote. One snapshot for all, so records arriving meanwhile cannot look like
 * tampering.
 */
export async function verifySharedLog(pool: pg.Pool): Promise<SharedVerifyResult> {
  const c = await checkout(pool);
  try {
    await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const heads = await c.query("SELECT * FROM clawguard.log_heads ORDER BY node");
    const nodes: NodeVerdict[] = [];
    for (const h of heads.rows) nodes.push(await verifyNode(c, h));
    await c.query("COMMIT");
    return { ok: nodes.every((n) => n.ok), nodes };
  } finally {
    c.done();
  }
}

async function verifyNode(c: pg.ClientBase, h: Record<string, unknown>): Promise<NodeVerdict> {
  const node = h.node as string;
  const checkpointId = Number(h.checkpoint_id);
  const headId = Number(h.head_id);
  let expectedId = checkpointId + 1;
  let prevHash = h.checkpoint_hash as string;
  let count = 0;
  const verdict = (firstBadId: number, reason: string): NodeVerdict => ({
    node,
    ok: false,
    count,
    fromId: checkpointId,
    headId,
    headHash: h.head_hash as string,
    firstBadId,
    reason: `node ${node}, record ${firstBadId}: ${reason}`,
  });
  for (;;) {
    const page = await c.query(CHAIN_PAGE, [node, expectedId]);
    for (const raw of page.rows) {
      const r = fromRow(raw);
      if (r.id > expectedId) {
        const missing =
          r.id - 1 > expectedId ? `records ${expectedId}..${r.id - 1} are` : `record ${expectedId} is`;
        return verdict(expectedId, `${missing} missing: ids jump from ${expectedId - 1} to ${r.id}`);
      }
      if (r.id < expectedId) return verdict(r.id, `record ${r.id} appears twice`);
      if (r.prevHash !== prevHash)
        return verdict(
          r.id,
          `prev_hash does not match the hash of ${r.id - 1 === checkpointId ? "the checkpoint" : `record ${r.id - 1}`} (rows moved, relinked, or a hash edited)`,
        );
      if (recordHash(r.id, r, r.prevHash) !== r.hash)
        return verdict(r.id, "its contents do not match its hash (a field or the hash was edited)");
      if (raw.host_rev !== reverseHost(r.host)) return verdict(r.id, "its host index column was edited");
      prevHash = r.hash;
      expectedId += 1;
      count += 1;
    }
    if (page.rows.length < PAGE) break;
  }
  if (expectedId - 1 > headId)
    return verdict(headId + 1, `records past the node's head (${headId}) were added outside the shield`);
  if (expectedId - 1 < headId)
    return verdict(
      expectedId,
      `records ${expectedId}..${headId} are missing: the node's head says ${headId} were written`,
    );
  if (prevHash !== h.head_hash) return verdict(headId, "the head's hash differs from the last record's");
  return { node, ok: true, count, fromId: checkpointId, headId, headHash: h.head_hash as string };
}
