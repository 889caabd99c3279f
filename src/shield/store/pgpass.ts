/**
 * The password file format of libpq (PGPASSFILE, ~/.pgpass): one `host:port:database:user:password`
 * a line, `*` matching anything, `\:` and `\\` escaping, the first matching line winning. Pure.
 */

export interface PgpassTarget {
  host: string;
  port: number;
  database: string;
  user: string;
}

/** The fields of one line, escapes undone; null for a comment, a blank or a short line. */
export function pgpassFields(line: string): string[] | null {
  if (line.trim() === "" || line.startsWith("#")) return null;
  const fields: string[] = [];
  let cur = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
    } else if (c === ":" && fields.length < 4) {
      fields.push(cur);
      cur = "";
    } else cur += c;
  }
  fields.push(cur);
  return fields.length === 5 ? fields : null;
}

export function pgpassLookup(text: string, t: PgpassTarget): string | null {
  const want = [t.host, String(t.port), t.database, t.user];
  for (const line of text.split(/\r?\n/)) {
    const f = pgpassFields(line);
    if (f && want.every((w, i) => f[i] === "*" || f[i] === w)) return f[4]!;
  }
  return null;
}
