/**
 * A real PostgreSQL (Debian's postgresql package, 15 on Debian 12): a cluster of its own in a
 * temp dir, on a free loopback port, with password (SCRAM) authentication over TCP. PostgreSQL
 * refuses to run as root, so as root the server runs as the `postgres` user; as anyone else, as
 * that user. The store's tests (pg-harness.ts) and its benchmark (bench/shield-store.ts) start
 * one each.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";

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
/** Why no cluster can be started here, or null when one can. */
export const NO_POSTGRES = existsSync(path.join(BIN, "initdb"))
  ? null
  : `no PostgreSQL binaries (initdb) in ${FOUND ?? "/usr/lib/postgresql/*/bin"}: apt-get install postgresql, or set CLAWGUARD_PG_BIN`;

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
    private readonly durable: boolean,
  ) {}

  /**
   * `durable`: fsync and synchronous commits as PostgreSQL ships (for the benchmark); without,
   * both off, since the tests kill shields, never this server's disk.
   */
  static async start(opts: { durable?: boolean } = {}): Promise<TestPostgres> {
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
    const pgd = new TestPostgres(dir, await freePort(), asPostgres, opts.durable === true);
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

  /** Start (again) on the same port. */
  startServer(): void {
    const sync = this.durable ? "" : " -c fsync=off -c synchronous_commit=off";
    this.run("pg_ctl", [
      "-D",
      this.data,
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=200${sync}`,
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

  /**
   * CPU seconds (user and system) the server has used so far: its postmaster, the processes it
   * runs now, and those that ended (counted into the postmaster's children's time). The
   * benchmark reads it before and after, since on a shared machine CPU per record is steadier
   * than records per second.
   */
  cpuSeconds(): number {
    const tick = 100; // USER_HZ, 100 on Linux
    const stat = (pid: string): string[] | null => {
      try {
        // Fields after "(comm) ": state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14].
        const text = readFileSync(`/proc/${pid}/stat`, "utf8");
        return text.slice(text.lastIndexOf(") ") + 2).split(" ");
      } catch {
        return null;
      }
    };
    const pm = readFileSync(path.join(this.data, "postmaster.pid"), "utf8").split("\n")[0]!.trim();
    const own = stat(pm);
    if (!own) return 0;
    let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid) || pid === pm) continue;
      const f = stat(pid);
      if (f && f[1] === pm) ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks / tick;
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
