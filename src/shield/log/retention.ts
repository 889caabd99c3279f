import type Database from "better-sqlite3";
import { LogError, readChain } from "./schema.js";

export interface PruneOptions {
  /** Remove records older than this many ms (only whole prefixes of the chain are removed). */
  olderThanMs?: number;
  /** Shrink the database file to at most this many bytes by removing the oldest records. */
  maxBytes?: number;
  now?: number;
}

export interface PruneResult {
  deleted: number;
  /** Id of the last removed record; verify starts after it. 0 when nothing was ever pruned. */
  checkpointId: number;
  bytes: number;
}

const CHUNK = 5000;

export function databaseBytes(db: Database.Database): number {
  const pageSize = db.pragma("page_size", { simple: true }) as number;
  const pages = db.pragma("page_count", { simple: true }) as number;
  return pageSize * pages;
}

function usedBytes(db: Database.Database): number {
  const free = db.pragma("freelist_count", { simple: true }) as number;
  return databaseBytes(db) - free * (db.pragma("page_size", { simple: true }) as number);
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Remove the oldest records while keeping the chain verifiable: deletion is always a prefix by
 * id, and the checkpoint row keeps the hash of the last removed record, which the next record's
 * prev_hash must match. Age pruning stops at the first record that is young enough, so no record
 * newer than the cut-off is ever removed. Works in chunks and yields between them so the shield
 * keeps serving.
 */
export async function pruneRecords(db: Database.Database, opts: PruneOptions): Promise<PruneResult> {
  let deleted = 0;
  const hashOf = db.prepare("SELECT hash FROM records WHERE id = ?").pluck();
  const idsIn = db.prepare("SELECT id FROM records WHERE id > ? AND id <= ? ORDER BY id").pluck();
  const deleteUpTo = db.prepare("DELETE FROM records WHERE id <= ?");
  const setCheckpoint = db.prepare("UPDATE chain SET checkpoint_id = ?, checkpoint_hash = ? WHERE one = 1");

  const removeThrough = async (lastId: number) => {
    for (;;) {
      const { checkpointId } = readChain(db);
      if (checkpointId >= lastId) return;
      const upTo = Math.min(lastId, checkpointId + CHUNK);
      db.transaction(() => {
        const ids = idsIn.all(checkpointId, upTo) as number[];
        const gap = ids.findIndex((id, k) => id !== checkpointId + 1 + k);
        if (gap >= 0 || ids.length !== upTo - checkpointId) {
          const missing = gap >= 0 ? checkpointId + 1 + gap : checkpointId + 1 + ids.length;
          throw new LogError(
            `cannot prune the shield log: record ${missing} is missing, so the chain is already broken; run clawguard shield verify-log`,
          );
        }
        const hash = hashOf.get(upTo) as string;
        deleted += deleteUpTo.run(upTo).changes;
        setCheckpoint.run(upTo, hash);
      }).immediate();
      await tick();
    }
  };

  if (opts.olderThanMs !== undefined) {
    const cutoff = (opts.now ?? Date.now()) - opts.olderThanMs;
    const firstYoung = db.prepare("SELECT MIN(id) FROM records WHERE ts >= ?").pluck().get(cutoff) as
      number | null;
    await removeThrough(firstYoung === null ? readChain(db).headId : firstYoung - 1);
  }

  if (opts.maxBytes !== undefined) {
    // Each pass estimates bytes per record from the live pages, removes enough to land at 80% of
    // the limit, and gives the freed pages back to the file system; a few passes converge.
    for (let pass = 0; pass < 5; pass++) {
      shrink(db);
      if (databaseBytes(db) <= opts.maxBytes) break;
      const { headId, checkpointId } = readChain(db);
      const rows = headId - checkpointId;
      if (rows <= 0) break;
      const perRow = Math.max(1, usedBytes(db) / rows);
      const keep = Math.max(0, Math.floor((opts.maxBytes * 0.8) / perRow));
      await removeThrough(headId - Math.min(rows - 1, keep));
    }
  }
  shrink(db);
  return { deleted, checkpointId: readChain(db).checkpointId, bytes: databaseBytes(db) };
}

function shrink(db: Database.Database): void {
  db.pragma("incremental_vacuum");
  // Copy the WAL back into the file and truncate it, so the freed pages leave the disk too.
  db.pragma("wal_checkpoint(TRUNCATE)");
}
