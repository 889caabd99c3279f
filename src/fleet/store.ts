/**
 * Every fleet run, kept on this machine in SQLite: the run (kind, when, inventory, flags,
 * summary) and each host's row as it finishes (how it was reached, its status, its error, and
 * the JSON its clawguard sent). History, diff and rollback read it back. The file holds what
 * each server exposes, so it and its directory are for this user only.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { ClawguardError } from "../errors.js";
import type { HostError, HostStatus } from "./host.js";
import type { Target } from "./target.js";

export type RunKind = "audit" | "harden" | "lockdown" | "rollback";

export interface RunRecord {
  id: string;
  kind: RunKind;
  startedAt: string;
  finishedAt?: string;
  inventory?: string;
  params: Record<string, unknown>;
  summary?: Record<string, unknown>;
}

export interface HostRecord {
  host: string;
  target: Target;
  status: HostStatus;
  error?: HostError;
  /** What the host's clawguard sent: its audit report, or the outcome of a harden or lockdown. */
  result?: unknown;
  startedAt: string;
  durationMs: number;
}

const SCHEMA_VERSION = 1;

export function defaultStatePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(homedir(), ".local", "state");
  return path.join(base, "clawguard", "fleet.db");
}

export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

interface RunRow {
  id: string;
  kind: RunKind;
  started_at: string;
  finished_at: string | null;
  inventory: string | null;
  params: string;
  summary: string | null;
}

interface HostRow {
  host: string;
  target: string;
  status: HostStatus;
  error: string | null;
  result: string | null;
  started_at: string;
  duration_ms: number;
}

function runOf(r: RunRow): RunRecord {
  return {
    id: r.id,
    kind: r.kind,
    startedAt: r.started_at,
    ...(r.finished_at !== null ? { finishedAt: r.finished_at } : {}),
    ...(r.inventory !== null ? { inventory: r.inventory } : {}),
    params: JSON.parse(r.params) as Record<string, unknown>,
    ...(r.summary !== null ? { summary: JSON.parse(r.summary) as Record<string, unknown> } : {}),
  };
}

export class RunStore {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  static open(file: string): RunStore {
    const fail = (why: string, cause?: unknown) =>
      new ClawguardError("CG_STATE_UNUSABLE", why, {
        where: file,
        hint: "give --state a file this user may write, or move the broken one aside",
        cause,
      });
    let db: Database.Database;
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      db = new Database(file);
      chmodSync(file, 0o600);
    } catch (e) {
      throw fail(`cannot open the fleet's run store: ${(e as Error).message}`, e);
    }
    try {
      const version = db.pragma("user_version", { simple: true }) as number;
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number };
      if (version === 0 && tables.n > 0) throw new Error("it holds tables of something else");
      if (version > SCHEMA_VERSION)
        throw new Error(`it was written by a newer clawguard (schema ${version})`);
      db.exec(`
        CREATE TABLE IF NOT EXISTS runs (
          id TEXT PRIMARY KEY, kind TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
          inventory TEXT, params TEXT NOT NULL, summary TEXT);
        CREATE TABLE IF NOT EXISTS hosts (
          run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL, host TEXT NOT NULL,
          target TEXT NOT NULL, status TEXT NOT NULL, error TEXT, result TEXT,
          started_at TEXT NOT NULL, duration_ms INTEGER NOT NULL,
          PRIMARY KEY (run_id, host));
        PRAGMA user_version = ${SCHEMA_VERSION};`);
    } catch (e) {
      db.close();
      throw fail(`not a store of fleet runs: ${(e as Error).message}`, e);
    }
    return new RunStore(db, file);
  }

  beginRun(kind: RunKind, inventory: string | undefined, params: Record<string, unknown>): RunRecord {
    const run: RunRecord = { id: newRunId(), kind, startedAt: new Date().toISOString(), inventory, params };
    this.db
      .prepare("INSERT INTO runs (id, kind, started_at, inventory, params) VALUES (?, ?, ?, ?, ?)")
      .run(run.id, kind, run.startedAt, inventory ?? null, JSON.stringify(params));
    return run;
  }

  /** Save (or replace) one host's row; a run interrupted midway keeps the hosts it finished. */
  saveHost(runId: string, seq: number, h: HostRecord): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO hosts (run_id, seq, host, target, status, error, result, started_at, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        runId,
        seq,
        h.host,
        JSON.stringify(h.target),
        h.status,
        h.error ? JSON.stringify(h.error) : null,
        h.result !== undefined ? JSON.stringify(h.result) : null,
        h.startedAt,
        Math.round(h.durationMs),
      );
  }

  finishRun(runId: string, summary: Record<string, unknown>): void {
    this.db
      .prepare("UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?")
      .run(new Date().toISOString(), JSON.stringify(summary), runId);
  }

  /** Runs, newest first; only those of `kinds` when given. */
  runs(kinds?: readonly RunKind[]): RunRecord[] {
    const rows = this.db.prepare("SELECT * FROM runs ORDER BY started_at DESC, rowid DESC").all() as RunRow[];
    return rows.map(runOf).filter((r) => !kinds || kinds.includes(r.kind));
  }

  /** The run `id` names (a unique prefix will do). */
  run(id: string): RunRecord {
    const rows = this.db
      .prepare("SELECT * FROM runs WHERE substr(id, 1, length(?)) = ? ORDER BY id")
      .all(id, id) as RunRow[];
    if (rows.length === 1) return runOf(rows[0]!);
    throw new ClawguardError(
      "CG_RUN_NOT_FOUND",
      rows.length === 0 ? `no fleet run "${id}"` : `"${id}" names ${rows.length} fleet runs`,
      { where: this.file, hint: "clawguard fleet history lists them" },
    );
  }

  hosts(runId: string): HostRecord[] {
    const rows = this.db.prepare("SELECT * FROM hosts WHERE run_id = ? ORDER BY seq").all(runId) as HostRow[];
    return rows.map((r) => ({
      host: r.host,
      target: JSON.parse(r.target) as Target,
      status: r.status,
      ...(r.error !== null ? { error: JSON.parse(r.error) as HostError } : {}),
      ...(r.result !== null ? { result: JSON.parse(r.result) as unknown } : {}),
      startedAt: r.started_at,
      durationMs: r.duration_ms,
    }));
  }

  close(): void {
    this.db.close();
  }
}
