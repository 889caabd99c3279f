import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { chainAppender, decodeBatch, encodeBatch } from "../../src/shield/log/batch.js";
import {
  canonicalFromLine,
  canonicalRecord,
  GENESIS_HASH,
  normaliseRecord,
  RECORD_COLUMNS,
  recordFields,
  recordHash,
  recordLine,
  recordRow,
  reverseHost,
} from "../../src/shield/log/record.js";
import { openWritable } from "../../src/shield/log/schema.js";
import { verifyChain } from "../../src/shield/log/verify.js";
import type { LogRecord } from "../../src/shield/types.js";
import { record, tempDb } from "./log-helpers.js";

/** Text that JSON must escape, or that is more than one UTF-16 unit per character. */
const awkward: LogRecord = {
  ts: 1_700_000_000_123,
  agent: "agent-\u00e9\u{1F600}",
  fleet: null,
  tier: 't"1\\',
  sourceAddress: "10.0.0.1",
  method: "GET",
  host: "b\u00fccher.\u{1F600}.example",
  port: 8080,
  path: "/a\nb\r\tc\u0001\u2028\u2029",
  decision: "allowed",
  rule: null,
  reason: "</script> \u00ff",
  upstreamAddress: null,
  bytesUp: 0,
  bytesDown: Number.MAX_SAFE_INTEGER,
  durationMs: 12,
};

describe("shield log batches", () => {
  it("hash a record as the chain always has", () => {
    // Written by an earlier release; a change here would make every stored log fail verify-log.
    expect(recordHash(42, awkward, GENESIS_HASH)).toBe(
      "e4bf5b68dc508843a2f155c9e33eadf9980f19eb96a9f304bfd66a6ce395c0e3",
    );
  });

  it("build the canonical text from a record's line exactly as from the record", () => {
    const prev = "9f".repeat(32);
    for (const r of [awkward, ...Array.from({ length: 12 }, (_, i) => normaliseRecord(record(i)))]) {
      const line = recordLine(r);
      expect(line).not.toContain("\n");
      expect(canonicalFromLine(7, line, prev)).toBe(canonicalRecord(7, r, prev));
      expect(canonicalFromLine(1, line, GENESIS_HASH)).toBe(canonicalRecord(1, r, GENESIS_HASH));
    }
    // Whatever a damaged head holds, the text is still what canonicalRecord makes of it.
    expect(canonicalFromLine(3, recordLine(awkward), 'a"b\\')).toBe(canonicalRecord(3, awkward, 'a"b\\'));
  });

  it("reverse a host by code point, as stored logs have it", () => {
    const byCodePoint = (h: string) => [...h].reverse().join("");
    for (const host of [
      "",
      "a",
      "api.openai.com",
      awkward.host,
      "\u{1F600}\u{1F601}",
      "x\uD800y",
      "\uDC00x\uD83D",
      "\uD83D\uD83D\uDE00\uDE00",
    ]) {
      expect(reverseHost(host)).toBe(byCodePoint(host));
    }
    expect(reverseHost("api.example.com")).toBe("moc.elpmaxe.ipa");
  });

  it("carry records to the writer unchanged, one line each, and an empty batch as none", () => {
    const records = [awkward, normaliseRecord(record(1)), normaliseRecord(record(2))];
    const lines = decodeBatch(encodeBatch(records));
    expect(lines).toEqual(records.map(recordLine));
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });

  it("store the fields the line carries and chain them so that verify agrees", () => {
    const db = openWritable(tempDb(), "normal");
    const records = [awkward, ...Array.from({ length: 20 }, (_, i) => normaliseRecord(record(i)))];
    const lines = decodeBatch(encodeBatch(records));
    const append = chainAppender(db);
    append(lines, 0, 5);
    append(lines, 5, lines.length - 5);
    const rows = db.prepare("SELECT * FROM records ORDER BY id").all() as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(records.length);
    expect(rows[0]).toMatchObject({
      id: 1,
      agent: awkward.agent,
      fleet: null,
      tier: awkward.tier,
      host: awkward.host,
      host_rev: reverseHost(awkward.host),
      path: awkward.path,
      bytes_down: awkward.bytesDown,
      prev_hash: GENESIS_HASH,
      hash: recordHash(1, awkward, GENESIS_HASH),
    });
    expect(verifyChain(db)).toMatchObject({ ok: true, count: records.length, headId: records.length });
    db.close();
  });

  it("store a record as the row recordRow encodes, column by column: the one encoding of a record", () => {
    const db = openWritable(tempDb(), "normal");
    const records = [awkward, ...Array.from({ length: 6 }, (_, i) => normaliseRecord(record(i)))];
    chainAppender(db)(decodeBatch(encodeBatch(records)), 0, records.length);
    const rows = db
      .prepare(`SELECT ${RECORD_COLUMNS.join(", ")} FROM records ORDER BY id`)
      .raw()
      .all();
    expect(rows).toHaveLength(records.length);
    let prev = GENESIS_HASH;
    records.forEach((r, i) => {
      const hash = recordHash(i + 1, r, prev);
      expect(rows[i]).toEqual(recordRow(i + 1, recordFields(r), prev, hash));
      prev = hash;
    });
    db.close();
  });

  it("write nothing of a batch the database refuses", () => {
    const path = tempDb();
    const db = openWritable(path, "normal");
    const append = chainAppender(db);
    append([recordLine(normaliseRecord(record(0)))], 0, 1);
    const lock = new Database(path);
    lock.exec("BEGIN IMMEDIATE");
    expect(() => append([recordLine(normaliseRecord(record(1)))], 0, 1)).toThrow(/locked|busy/i);
    lock.exec("ROLLBACK");
    lock.close();
    expect(db.prepare("SELECT COUNT(*) AS n FROM records").get()).toEqual({ n: 1 });
    db.close();
  });
});
