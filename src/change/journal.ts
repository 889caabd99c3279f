import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { ClawguardError } from "../errors.js";
import type { Change } from "./change.js";

/** What a path was before a change: enough to put it back byte for byte. */
export type Saved =
  | { path: string; state: "absent" }
  | { path: string; state: "file"; mode: number; uid: number; gid: number; blob: string; sha256: string }
  | { path: string; state: "dir"; mode: number; uid: number; gid: number }
  | { path: string; state: "symlink"; target: string; uid: number; gid: number }
  /** Only mode and owner matter (chmod, chown). */
  | { path: string; state: "meta"; mode: number; uid: number; gid: number }
  /**
   * Owners of a whole tree (chown-tree): `blob` lists `[relative path, uid, gid]` per entry;
   * entries created later get the owner the top directory had (`uid`, `gid`).
   */
  | {
      path: string;
      state: "owners";
      uid: number;
      gid: number;
      blob: string;
      sha256: string;
      entries: number;
    };

/** The command a run came from; runs journaled before lockdown had runs are harden's. */
export type RunKind = "harden" | "lockdown";

/** What the running system was before a change acting on it: the unit ran, the ruleset was loaded. */
export interface WasActive {
  active: boolean;
}

export type JournalRecord =
  | {
      t: "run";
      id: string;
      startedAt: string;
      root: string;
      changes: number;
      kind?: RunKind;
      /** What the run was for, in its command's own terms (lockdown: the shield it pinned). */
      about?: Record<string, unknown>;
    }
  /** Written and fsynced BEFORE the change is made, so a crash leaves what to undo. */
  | {
      t: "begin";
      n: number;
      change: Change;
      saved: Saved[];
      packagesAdded?: string[];
      was?: WasActive;
    }
  | { t: "done"; n: number }
  | { t: "end"; status: "ok" | "failed"; error?: string }
  | { t: "rolledback"; at: string; problems: string[] }
  /** Some changes were undone on their own (the gateway's, when it did not come up). */
  | { t: "undone"; n: number[]; at: string; problems: string[] };

export const JOURNAL = "journal.jsonl";

/** A time as run ids begin with it, so that ids sort by time: 20260101T000000Z. */
export function runStamp(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

export function newRunId(now = new Date()): string {
  return `${runStamp(now)}-${randomBytes(3).toString("hex")}`;
}

/** Write a backup into the run's `blobs/` (new file, 600, fsynced); returns its sha256. */
export async function writeBlob(runDir: string, blob: string, bytes: Buffer): Promise<string> {
  const fh = await fs.open(path.join(runDir, blob), "wx", 0o600);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Read a backup written by writeBlob, refusing one whose checksum no longer matches; `left`
 * says what is then left alone ("backup X does not match its checksum; left LEFT").
 */
export async function readBlob(runDir: string, blob: string, sha256: string, left: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path.join(runDir, blob));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error(`backup ${blob} is missing; left ${left}`);
    throw err;
  }
  if (createHash("sha256").update(bytes).digest("hex") !== sha256)
    throw new Error(`backup ${blob} does not match its checksum; left ${left}`);
  return bytes;
}

export function runsDir(stateDir: string): string {
  return path.join(stateDir, "runs");
}

/** Append-only, one fsync per record: a record on disk is a record that happened. */
export class Journal {
  private constructor(
    readonly dir: string,
    private readonly fh: fs.FileHandle,
    private readonly listener?: (r: JournalRecord) => void,
  ) {}

  static async create(stateDir: string, id: string, listener?: (r: JournalRecord) => void): Promise<Journal> {
    const dir = path.join(runsDir(stateDir), id);
    await fs.mkdir(path.join(dir, "blobs"), { recursive: true, mode: 0o700 });
    // Backups hold secrets (tokens in openclaw.json): nobody but root reads them.
    await fs.chmod(stateDir, 0o700);
    await fs.chmod(dir, 0o700);
    const fh = await fs.open(path.join(dir, JOURNAL), "wx", 0o600);
    return new Journal(dir, fh, listener);
  }

  static async reopen(dir: string): Promise<Journal> {
    return new Journal(dir, await fs.open(path.join(dir, JOURNAL), "a", 0o600));
  }

  async append(r: JournalRecord): Promise<void> {
    await this.fh.write(JSON.stringify(r) + "\n");
    await this.fh.sync();
    this.listener?.(r);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Parse a journal; a torn last line (a crash mid-write) is dropped, anything else is an error. */
export function parseJournal(text: string, source: string): JournalRecord[] {
  const lines = text.split("\n");
  const out: JournalRecord[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as JournalRecord);
    } catch {
      if (i === lines.length - 1) return;
      throw new ClawguardError("CG_RUN_DAMAGED", "not a journal record; the run directory is damaged", {
        where: `${source}:${i + 1}`,
      });
    }
  });
  return out;
}

export interface RunSummary {
  id: string;
  kind: RunKind;
  dir: string;
  startedAt: string;
  root: string;
  /** Changes begun (some may not have finished: a crash). */
  begun: number;
  done: number;
  status: "ok" | "failed" | "interrupted";
  rolledBack: boolean;
}

export function summarize(id: string, dir: string, records: JournalRecord[]): RunSummary {
  const head = records.find((r) => r.t === "run");
  const end = records.find((r) => r.t === "end");
  return {
    id,
    kind: (head?.t === "run" && head.kind) || "harden",
    dir,
    startedAt: head?.t === "run" ? head.startedAt : "",
    root: head?.t === "run" ? head.root : "",
    begun: records.filter((r) => r.t === "begin").length,
    done: records.filter((r) => r.t === "done").length,
    status: end?.t === "end" ? end.status : "interrupted",
    rolledBack: records.some((r) => r.t === "rolledback"),
  };
}

export async function readRun(
  stateDir: string,
  id: string,
): Promise<{ summary: RunSummary; records: JournalRecord[] }> {
  if (!/^[A-Za-z0-9._-]+$/.test(id))
    throw new ClawguardError("CG_RUN_NOT_FOUND", `"${id}" is not a run id (see clawguard rollback --list)`);
  const dir = path.join(runsDir(stateDir), id);
  const file = path.join(dir, JOURNAL);
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch {
    throw new ClawguardError(
      "CG_RUN_NOT_FOUND",
      `no run ${id}: ${file} does not exist (see clawguard rollback --list)`,
    );
  }
  const records = parseJournal(text, file);
  return { summary: summarize(id, dir, records), records };
}

/**
 * Every run, oldest first. Ids begin with the second they were made in, and two runs can share
 * one (lockdown applied twice in a row): the start time, to the millisecond, orders those.
 */
export async function listRuns(stateDir: string): Promise<RunSummary[]> {
  let names: string[];
  try {
    names = (await fs.readdir(runsDir(stateDir))).sort();
  } catch {
    return [];
  }
  const out: RunSummary[] = [];
  for (const id of names) {
    try {
      out.push((await readRun(stateDir, id)).summary);
    } catch {
      // A directory without a journal is not a run.
    }
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
}
