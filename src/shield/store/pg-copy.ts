/**
 * Rows into PostgreSQL with `COPY ... FROM STDIN` (pg-copy-streams), in COPY's text format. A
 * batch of log records goes in as one COPY: PostgreSQL parses plain text lines and inserts them
 * in groups, where an INSERT of parameter arrays had every value serialised into an array
 * literal here, parsed from it there, and each row routed through the executor on its own.
 */
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

/** Characters COPY's text format gives a meaning: the escape, the column and row separators. */
const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPED: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/**
 * One value as COPY's text format reads it back: NULL as `\N`, numbers in decimal, text with its
 * backslashes, tabs and line breaks escaped. (NUL, which no PostgreSQL text can hold, never
 * reaches here: records are normalised before they are hashed.)
 */
export function copyValue(v: string | number | null): string {
  if (v === null) return "\\N";
  if (typeof v === "number") return String(v);
  return SPECIAL.test(v) ? v.replace(SPECIALS, (c) => ESCAPED[c]!) : v;
}

/**
 * Run `COPY table (columns) FROM STDIN` on `client` with `text` (lines of COPY's text format); resolves
 * with the number of rows PostgreSQL took, rejects with its error (nothing of the COPY is then
 * written, and the transaction it ran in must be rolled back).
 */
export function copyIn(client: pg.ClientBase, sql: string, text: Buffer | string): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(sql));
    stream.on("error", reject);
    stream.on("finish", () => resolve(stream.rowCount));
    stream.end(text);
  });
}
