/**
 * A shield's own state in SQLite, in a file beside its log: budget counts, so that a restart does
 * not hand every agent a fresh budget, and, for a node sharing PostgreSQL, the last policy it had,
 * so that it can start and enforce it while PostgreSQL is away.
 */
import Database from "better-sqlite3";
import path from "node:path";
import { ClawguardError } from "../../errors.js";
import { SLOTS, type BudgetCounts, type CountRow } from "./budget-share.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS budget_counts (
  key TEXT NOT NULL, window_ms INTEGER NOT NULL, slot INTEGER NOT NULL,
  requests REAL NOT NULL, bytes REAL NOT NULL,
  PRIMARY KEY (key, window_ms, slot)
);
CREATE TABLE IF NOT EXISTS policy_cache (one INTEGER PRIMARY KEY CHECK (one = 1), revision INTEGER NOT NULL, doc TEXT NOT NULL);
`;

/** The state file of a shield whose log is `logPath`. */
export function statePath(logPath: string): string {
  return path.join(path.dirname(logPath), `${path.basename(logPath).replace(/\.db$/, "")}-state.db`);
}

export class SqliteState implements BudgetCounts {
  private readonly db: Database.Database;

  constructor(readonly file: string) {
    try {
      this.db = new Database(file);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("busy_timeout = 1000");
      this.db.exec(SCHEMA);
    } catch (e) {
      throw new ClawguardError(
        "CG_LOG_UNUSABLE",
        `cannot open the shield's state file: ${e instanceof Error ? e.message : String(e)}`,
        {
          where: file,
          hint: "check that the log's directory is writable by the shield",
        },
      );
    }
  }

  async merge(deltas: CountRow[], nowMs: number): Promise<CountRow[]> {
    const add = this.db.prepare(
      `INSERT INTO budget_counts (key, window_ms, slot, requests, bytes) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key, window_ms, slot) DO UPDATE SET requests = requests + excluded.requests, bytes = bytes + excluded.bytes`,
    );
    this.db.transaction(() => {
      for (const r of deltas) add.run(r.key, r.windowMs, r.slot, r.requests, r.bytes);
      this.db
        .prepare("DELETE FROM budget_counts WHERE slot < (? * ? / window_ms) - ? - 1")
        .run(nowMs, SLOTS, SLOTS);
    })();
    const rows = this.db
      .prepare(
        "SELECT key, window_ms AS windowMs, slot, requests, bytes FROM budget_counts WHERE slot >= CAST(? * ? / window_ms AS INTEGER) - ?",
      )
      .all(nowMs, SLOTS, SLOTS) as CountRow[];
    return rows;
  }

  /** The policy this node last applied from the shared store, or null. */
  cachedPolicy(): { revision: number; doc: string } | null {
    return (
      (this.db.prepare("SELECT revision, doc FROM policy_cache WHERE one = 1").get() as
        { revision: number; doc: string } | undefined) ?? null
    );
  }

  cachePolicy(revision: number, doc: string): void {
    this.db
      .prepare(
        "INSERT INTO policy_cache (one, revision, doc) VALUES (1, ?, ?) ON CONFLICT (one) DO UPDATE SET revision = excluded.revision, doc = excluded.doc",
      )
      .run(revision, doc);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
