/**
 * A real PostgreSQL (Debian's postgresql package, 15 on Debian 12) for the store's tests: a
 * cluster of its own in a temp dir, on a free loopback port, with password (SCRAM)
 * authentication over TCP. PostgreSQL refuses to run as root, so as root the server runs as the
 * `postgres` user; as anyone else, as that user. One cluster per test file; each test takes a
 * database of its own.
 *
 * Without PostgreSQL's binaries the tests are skipped, saying why, so that `npm test` passes
 * where only Node is installed; CI installs postgresql and sets CLAWGUARD_REQUIRE_POSTGRES=1,
 * which turns a missing server into a failure instead of a skip.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { describe } from "vitest";

/** The newest PostgreSQL installed the Debian way, or CLAWGUARD_PG_BIN. */
function findBin(): string | null {
  if (process.env.CLAWGUARD_PG_BIN) return process.env.CLAWGUARD_PG_BIN;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  return versions.length > 0 ? path.join(root, versions[0]!, "bin") : null;
}

const FOUND = findBin();
const BIN = FOUND ?? "/usr/lib/postgresql/15/bin";
/** Why the PostgreSQL tests cannot run here, or null when they can. */
export const NO_POSTGRES = existsSync(path.join(BIN, "initdb"))
  ? null
  : `no PostgreSQL binaries (initdb) in ${FOUND ?? "/usr/lib/postgresql/*/bin"}: apt-get install postgresql, or set CLAWGUARD_PG_BIN`;
if (NO_POSTGRES !== null) {
  if (process.env.CLAWGUARD_REQUIRE_POSTGRES === "1")
    throw new Error(`CLAWGUARD_REQUIRE_POSTGRES=1, but ${NO_POSTGRES}`);
  process.stderr.write(`skipping the shared store's tests: ${NO_POSTGRES}\n`);
}

/** Time for a test that starts a cluster, three shields, and stops PostgreSQL under load. */
export const PG_TIMEOUT = 60_000;

/** `describe` for tests that need PostgreSQL: skipped, with the reason in its name, without it. */
export function describePg(name: string, fn: () => void): void {
  if (NO_POSTGRES !== null) describe.skip(`${name} (skipped: ${NO_POSTGRES})`, fn);
  else describe(name, { timeout: PG_TIMEOUT }, fn);
}
export const SUPERUSER_PASSWORD = "superuser-password-for-tests";
export const ROLE = "clawguard";
export const ROLE_PASSWORD = "role-password-for-tests";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export class TestPostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly asPostgres: boolean,
  ) {}

  static async start(): Promise<TestPostgres> {
    if (!existsSync(path.join(BIN, "initdb")))
      throw new Error(
        `no PostgreSQL binaries in ${BIN}: apt-get install postgresql (or set CLAWGUARD_PG_BIN)`,
      );
    const dir = mkdtempSync(path.join(tmpdir(), "clawguard-pg-"));
    const asPostgres = process.getuid?.() === 0;
    if (asPostgres) {
      const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
      const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
      chownSync(dir, uid, gid);
    }
    chmodSync(dir, 0o700);
    const pwfile = path.join(dir, "pw");
    writeFileSync(pwfile, SUPERUSER_PASSWORD);
    if (asPostgres) chownSync(pwfile, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), 0);
    const pgd = new TestPostgres(dir, await freePort(), asPostgres);
    pgd.run("initdb", [
      "-D",
      pgd.data,
      "-U",
      "postgres",
      "--pwfile",
      pwfile,
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "--no-sync",
      "-E",
      "UTF8",
    ]);
    pgd.startServer();
    await pgd.sql(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${ROLE_PASSWORD}' CREATEDB`);
    return pgd;
  }

  get data(): string {
    return path.join(this.dir, "data");
  }

  private run(tool: string, args: string[]): string {
    const cmd = path.join(BIN, tool);
    const r = this.asPostgres
      ? spawnSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8" })
      : spawnSync(cmd, args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Start (again) on the same port; fsync off: the tests kill shields, never this server's disk. */
  startServer(): void {
    this.run("pg_ctl", [
      "-D",
      this.data,
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200`,
      "-l",
      path.join(this.dir, "log"),
      "-w",
      "start",
    ]);
  }

  /** Stop at once, dropping every connection, as a crash or a network cut would look to clients. */
  stopServer(): void {
    this.run("pg_ctl", ["-D", this.data, "-m", "immediate", "-w", "stop"]);
  }

  /** Run SQL as the superuser, in `database`. */
  async sql(text: string, database = "postgres", params: unknown[] = []): Promise<pg.QueryResult> {
    const c = new pg.Client({
      host: "127.0.0.1",
      port: this.port,
      user: "postgres",
      password: SUPERUSER_PASSWORD,
      database,
    });
    await c.connect();
    try {
      return await c.query(text, params);
    } finally {
      await c.end();
    }
  }

  private made = 0;
  /** A fresh database owned by the shield's role. */
  async database(): Promise<string> {
    const name = `shield_${process.pid}_${++this.made}`;
    await this.sql(`CREATE DATABASE ${name} OWNER ${ROLE}`);
    return name;
  }

  url(database: string, user = ROLE): string {
    return `postgres://${user}@127.0.0.1:${this.port}/${database}`;
  }

  async stop(): Promise<void> {
    try {
      this.stopServer();
    } catch {
      // Already stopped.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
