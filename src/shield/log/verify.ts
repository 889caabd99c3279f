import type Database from "better-sqlite3";
import { fromRow, type RawRow } from "./query.js";
import { recordHash, reverseHost } from "./record.js";
import { readChain } from "./schema.js";

export type VerifyResult =
  | { ok: true; count: number; fromId: number; headId: number }
  | { ok: false; firstBadId: number; reason: string; count: number };

/**
 * Walk the chain from the checkpoint (or genesis) and name the first record that breaks it:
 * an edited field (its hash no longer matches), a deleted row (an id gap, or the head pointing
 * past the last row), a reordered or relinked row (prev_hash differs from its predecessor's hash).
 * `count` is the number of records that verified.
 */
export function verifyChain(db: Database.Database): VerifyResult {
  // One read transaction: a snapshot, so a writer committing meanwhile cannot look like tampering.
  return db
    .transaction((): VerifyResult => {
      const chain = readChain(db);
      let expectedId = chain.checkpointId + 1;
      let prevHash = chain.checkpointHash;
      let count = 0;
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
      return { ok: true, count, fromId: chain.checkpointId, headId: chain.headId };
    })
    .deferred();
}
