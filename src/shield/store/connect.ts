/**
 * Reaching the shared PostgreSQL: the password (a file of its own, or PGPASSFILE / ~/.pgpass,
 * never the URL), a pool for queries, and errors that say which setting to fix. Each failure the
 * operator can act on has its own code: the server does not answer, it refuses the credentials,
 * the password file is unusable.
 */
import { readFile, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { ClawguardError } from "../../errors.js";
import type { StoreConfig } from "../config-store.js";
import { pgpassLookup } from "./pgpass.js";

/** Connection settings for `pg`, with the password already read. */
export type PgSettings = pg.ClientConfig;

export async function pgSettings(store: StoreConfig): Promise<PgSettings> {
  const password = store.passwordFile
    ? await passwordFromFile(store.passwordFile)
    : await passwordFromPgpass(store);
  return {
    host: store.host,
    port: store.port,
    database: store.database,
    user: store.user,
    ...(password !== null ? { password } : {}),
    application_name: store.params.application_name ?? "clawguard-shield",
    connectionTimeoutMillis: 5000,
    ...(store.params.sslmode && store.params.sslmode !== "disable"
      ? { ssl: sslFor(store.params.sslmode) }
      : {}),
  };
}

function sslFor(mode: string): pg.ClientConfig["ssl"] {
  // verify-full checks the name and the chain; require (libpq's meaning) only encrypts.
  return mode === "verify-full" || mode === "verify-ca"
    ? { rejectUnauthorized: true }
    : { rejectUnauthorized: false };
}

async function passwordFromFile(file: string): Promise<string> {
  const bad = (reason: string) =>
    new ClawguardError("CG_STORE_PASSWORD", reason, {
      where: file,
      hint: `write the password alone in it: umask 077; printf %s PASSWORD > ${file}`,
    });
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0)
      throw bad(
        `store.password_file is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
      );
    text = await readFile(file, "utf8");
  } catch (e) {
    if (e instanceof ClawguardError) throw e;
    throw bad(`cannot read store.password_file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const password = text.replace(/\r?\n$/, "");
  if (password === "") throw bad("store.password_file is empty");
  return password;
}

/** PGPASSFILE, or ~/.pgpass, as libpq reads it; null when neither has a line for this server. */
async function passwordFromPgpass(store: StoreConfig): Promise<string | null> {
  const file = process.env.PGPASSFILE ?? path.join(os.homedir(), ".pgpass");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return null;
  }
  return pgpassLookup(text, store);
}

/** What a connection failure means for the operator, as an error with its own code. */
export function storeError(e: unknown, store: StoreConfig, doing: string): ClawguardError {
  if (e instanceof ClawguardError) return e;
  const err = e as { code?: string; message?: string };
  const where = `${store.user}@${store.host}:${store.port}/${store.database}`;
  // 28P01: wrong password; 28000: no pg_hba.conf line or role; 3D000: no such database.
  if (err.code === "28P01" || err.code === "28000")
    return new ClawguardError(
      "CG_STORE_AUTH",
      `PostgreSQL at ${where} refused the credentials while ${doing}: ${err.message}`,
      {
        where: "store.postgres",
        hint: "check the user in store.postgres and the password in store.password_file or PGPASSFILE",
      },
    );
  if (err.code === "3D000")
    return new ClawguardError(
      "CG_STORE_UNREACHABLE",
      `PostgreSQL at ${where} has no such database while ${doing}`,
      {
        where: "store.postgres",
        hint: `create it: createdb -O ${store.user} ${store.database}`,
      },
    );
  const network =
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|57P01|57P03)$/;
  if ((err.code && network.test(err.code)) || /timeout|terminated|Connection/i.test(err.message ?? ""))
    return new ClawguardError(
      "CG_STORE_UNREACHABLE",
      `PostgreSQL at ${where} is unreachable while ${doing} (${err.code ?? err.message})`,
      {
        where: "store.postgres",
        hint: "start PostgreSQL, or fix the host and port in store.postgres",
      },
    );
  return new ClawguardError(
    "CG_STORE_FAILED",
    `PostgreSQL at ${where} failed while ${doing}: ${err.message ?? String(e)}`,
  );
}

/** Whether an error says the server cannot be reached now (worth retrying), not that a query is wrong. */
export function isUnreachable(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    (err.code !== undefined &&
      /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|57P0[1-3]|08\d\d\d)$/.test(
        err.code,
      )) ||
    /timeout|terminated|Connection|not queryable|ended/i.test(err.message ?? "")
  );
}

export function openPool(settings: PgSettings, max = 4): pg.Pool {
  const pool = new pg.Pool({ ...settings, max, idleTimeoutMillis: 30_000 });
  // An idle client whose server went away emits here; the next query reports it instead.
  pool.on("error", () => undefined);
  return pool;
}
