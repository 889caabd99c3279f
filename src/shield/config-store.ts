/**
 * `store:` and `node:` in shield.yaml: several shields that behave as one, sharing PostgreSQL.
 *
 *   node: shield-a                      # this shield's name among the others (one per process)
 *   store:
 *     postgres: "postgres://clawguard@db.internal:5432/clawguard"
 *     password_file: /etc/clawguard/pg.password   # or PGPASSFILE; never a password in the URL
 *
 * Without `store:` the shield keeps everything in files beside it (shield.yaml, SQLite), as one
 * shield always did: no database server is needed for a single shield.
 */
import path from "node:path";
import { z } from "zod";
import type { Segment } from "../yaml/read.js";

export const storeSchema = z.strictObject({
  postgres: z.string(),
  password_file: z.string().min(1).optional(),
});

export type RawStore = z.infer<typeof storeSchema>;

export interface StoreConfig {
  /** The URL as written, without a password (none is allowed in it). */
  postgres: string;
  host: string;
  port: number;
  database: string;
  user: string;
  /** Extra connection settings the URL carried (`?sslmode=require`, `application_name`...). */
  params: Record<string, string>;
  /** Absolute; the password is read from it at start. Without it, PGPASSFILE (or ~/.pgpass) is read. */
  passwordFile?: string;
}

/** A node's name: what other nodes, `shield move` and the log call it. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * `store:` read, or undefined with `fail` told the key at fault: a URL that does not parse, is
 * not postgres://, names no host or database, or carries a password (a password in shield.yaml
 * would be readable wherever the policy is, and end up in backups and diffs).
 */
export function storeConfig(
  raw: RawStore,
  file: string,
  fail: (segs: Segment[], reason: string) => void,
): StoreConfig | undefined {
  const at: Segment[] = ["store", "postgres"];
  const example = 'write e.g. "postgres://clawguard@db.internal:5432/clawguard"';
  let url: URL;
  try {
    url = new URL(raw.postgres.trim());
  } catch {
    fail(at, `"${raw.postgres}" is not a URL; ${example}`);
    return undefined;
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    fail(at, `"${url.protocol}" is not postgres: or postgresql:; ${example}`);
    return undefined;
  }
  if (url.password !== "") {
    fail(
      at,
      "holds a password: remove it from the URL and put it in a file named by store.password_file (mode 600), or in PGPASSFILE",
    );
    return undefined;
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (url.hostname === "" || database === "" || database.includes("/")) {
    fail(at, `needs a host and a database name; ${example}`);
    return undefined;
  }
  const port = url.port === "" ? 5432 : Number(url.port);
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) params[k] = v;
  return {
    postgres: raw.postgres.trim(),
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port,
    database,
    user: url.username === "" ? "clawguard" : decodeURIComponent(url.username),
    params,
    ...(raw.password_file !== undefined
      ? { passwordFile: path.resolve(path.dirname(path.resolve(file)), raw.password_file) }
      : {}),
  };
}
