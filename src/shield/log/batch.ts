/**
 * How a batch of records travels from the proxy's thread to the writer thread, and how the
 * writer chains and inserts it. Kept apart from writer.ts (a worker entry) so that the benchmark
 * can run the same code on its own thread.
 */
import type Database from "better-sqlite3";
import type { LogRecord } from "../types.js";
import { lineHash, RECORD_COLUMNS, recordLine, recordRow, type RecordFields } from "./record.js";
import { LogError } from "./schema.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Normalised records as one text, a `recordLine` each, UTF-8 encoded so that its buffer can be
 * transferred rather than copied: cloning a few hundred small objects costs several times more,
 * and posting the string itself was measured at 1.1 us per record on the proxy's thread. Lines
 * of bare field values serialise in a third of the time of an array of objects, and the writer
 * hashes them as they are instead of serialising every record again.
 */
export function encodeBatch(records: LogRecord[]): Uint8Array<ArrayBuffer> {
  return encoder.encode(records.map(recordLine).join("\n"));
}

/** The lines of a batch; each is parsed when it is written. */
export function decodeBatch(utf8: Uint8Array): string[] {
  const text = decoder.decode(utf8);
  return text === "" ? [] : text.split("\n");
}

/**
 * Prepare the statements that append to the chain on `db`. The returned function writes
 * `lines[start .. start + n)` in one transaction, chained from the stored head, and throws if
 * the database refuses (nothing of the batch is then written).
 */
export function chainAppender(db: Database.Database): (lines: string[], start: number, n: number) => void {
  const insert = db.prepare(
    `INSERT INTO records (${RECORD_COLUMNS.join(", ")}) VALUES (${RECORD_COLUMNS.map(() => "?").join(", ")})`,
  );
  const head = db.prepare("SELECT head_id AS id, head_hash AS hash FROM chain WHERE one = 1");
  const setHead = db.prepare("UPDATE chain SET head_id = ?, head_hash = ? WHERE one = 1");
  const write = db.transaction((lines: string[], start: number, n: number) => {
    const row = head.get() as { id: number; hash: string } | undefined;
    if (!row) throw new LogError("the chain table has no row");
    let id = row.id;
    let prev = row.hash;
    for (let i = start; i < start + n; i++) {
      const line = lines[i]!;
      const f = JSON.parse(line) as RecordFields;
      id += 1;
      const hash = lineHash(id, line, prev);
      insert.run(recordRow(id, f, prev, hash));
      prev = hash;
    }
    setHead.run(id, prev);
  });
  return (lines, start, n) => write.immediate(lines, start, n);
}
