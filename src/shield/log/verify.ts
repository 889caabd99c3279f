import type Database from "better-sqlite3";
import { fromRow, type RawRow } from "./query.js";
import { recordHash, reverseHost } from "./record.js";
import { readChain } from "./schema.js";

export type VerifyResult =
  | {
      ok: true;
      count: number;
      fromId: number;
      headId: number;
      /** Keep `headId:headHash` somewhere the shield cannot write: it anchors a later verify. */
      headHash: string;
      /** Anchors that name records pruned since: they can no longer be checked. */
      anchorsPruned: number[];
    }
  | { ok: false; firstBadId: number; reason: string; count: number };

/**
 * A record's id and hash kept outside the database (`verify-log` prints the head's). The chain
 * alone cannot tell a log that was rewritten whole, hashes recomputed, from an honest one; a
 * hash that was copied elsewhere before the rewrite can.
 */
export interface Anchor {
  id: number;
  hash: string;
}

export function parseAnchor(text: string): Anchor {
  const m = /^(\d+):([0-9a-f]{64})$/i.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not an anchor: expected ID:HASH (the head verify-log printed)`);
  return { id: Number(m[1]), hash: m[2]!.toLowerCase() };
}

/**
 * Walk the chain from the checkpoint (or genesis) and name the first record that breaks it:
 * an edited field (its hash no longer matches), a deleted row (an id gap, or the head pointing
 * past the last row), a reordered or relinked row (prev_hash differs from its predecessor's hash).
 * `count` is the number of records that verified. Each anchor must then name a record that is
 * still there with the same hash.
 */
export function verifyChain(db: Database.Database, anchors: Anchor[] = []): VerifyResult {
  // One read transaction: a snapshot, so a writer committing meanwhile cannot look like tampering.
  return db
    .transaction((): VerifyResult => {
      const chain = readChain(db);
      let expectedId = chain.checkpointId + 1;
      let prevHash = chain.checkpointHash;
      let count = 0;
      const hashes = anchors.length ? new Map<number, string>() : undefined;
      const bad = (firstBadId: number, reason: string): VerifyResult => ({
        ok: false,
        firstBadId,
        reason,
        count,
      });
      for (const raw of db
        .prepare("SELECT * FROM records ORDER BY id")
        .iterate() as IterableIterator<RawRow>) {
        const r = fromRow(raw);
        if (r.id < expectedId) {
          return bad(
            r.id,
            `record ${r.id} is at or before the retention checkpoint (id ${chain.checkpointId})`,
          );
        }
        if (r.id > expectedId) {
          const missing =
            r.id - 1 > expectedId ? `records ${expectedId}..${r.id - 1} are` : `record ${expectedId} is`;
          return bad(expectedId, `${missing} missing: ids jump from ${expectedId - 1} to ${r.id}`);
        }
        if (r.prevHash !== prevHash) {
          return bad(
            r.id,
            `record ${r.id}'s prev_hash does not match the hash of ${r.id - 1 === chain.checkpointId ? "the checkpoint" : `record ${r.id - 1}`} (rows moved, relinked, or a hash edited)`,
          );
        }
        if (recordHash(r.id, r, r.prevHash) !== r.hash) {
          return bad(
            r.id,
            `record ${r.id}'s contents do not match its hash (a field or the hash was edited)`,
          );
        }
        if (raw.host_rev !== reverseHost(r.host)) {
          return bad(r.id, `record ${r.id}'s host index column was edited`);
        }
        prevHash = r.hash;
        hashes?.set(r.id, r.hash);
        expectedId += 1;
        count += 1;
      }
      const lastId = expectedId - 1;
      if (chain.headId > lastId) {
        const missing =
          chain.headId > lastId + 1
            ? `records ${lastId + 1}..${chain.headId} are`
            : `record ${chain.headId} is`;
        return bad(
          lastId + 1,
          `${missing} missing: the log's head says ${chain.headId} records were written`,
        );
      }
      if (chain.headId < lastId) {
        return bad(
          chain.headId + 1,
          `record ${chain.headId + 1} was added outside the writer (head is ${chain.headId})`,
        );
      }
      if (chain.headHash !== prevHash) {
        return bad(lastId, `record ${lastId}'s hash does not match the log's head`);
      }
      const anchorsPruned: number[] = [];
      for (const a of [...anchors].sort((x, y) => x.id - y.id)) {
        const kept = "a copy of its hash kept elsewhere";
        if (a.id > chain.headId)
          return bad(
            a.id,
            `record ${a.id} is gone: ${kept} says it was written, the log now ends at ${chain.headId} (records were removed and the chain rebuilt)`,
          );
        const hash = a.id === chain.checkpointId ? chain.checkpointHash : hashes?.get(a.id);
        if (hash === undefined) anchorsPruned.push(a.id);
        else if (hash !== a.hash)
          return bad(
            a.id,
            `record ${a.id}'s hash differs from ${kept}: the log was rewritten and its chain recomputed`,
          );
      }
      return {
        ok: true,
        count,
        fromId: chain.checkpointId,
        headId: chain.headId,
        headHash: chain.headHash,
        anchorsPruned,
      };
    })
    .deferred();
}
