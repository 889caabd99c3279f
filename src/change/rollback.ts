import path from "node:path";
import type { Host } from "../host/host.js";
import { confinedTo, type ConfinedWrites, type Writer } from "../host/writer.js";
import { describeChange, type Change } from "./change.js";
import { restoreOwners } from "./owners.js";
import {
  Journal,
  listRuns,
  readBlob,
  readRun,
  type JournalRecord,
  type RunSummary,
  type Saved,
} from "./journal.js";

export interface RollbackResult {
  runId: string;
  /** Changes undone, last first. */
  undone: Change[];
  /** Packages the run installed; they stay (removing them could take others with them). */
  packagesKept: string[];
  /** What could not be put back, each with the path or command and why. */
  problems: string[];
}

/**
 * Undo the journaled changes of one run, last first. A change that was begun but never marked
 * done (a crash) is undone too: restoring a saved state is the same whether or not the change
 * got to happen.
 */
export async function rollbackRecords(
  host: Host,
  writer: Writer,
  runDir: string,
  records: JournalRecord[],
): Promise<{ undone: Change[]; packagesKept: string[]; problems: string[] }> {
  const done = new Set(records.filter((r) => r.t === "done").map((r) => (r as { n: number }).n));
  const undoneBefore = new Set(records.flatMap((r) => (r.t === "undone" ? r.n : [])));
  const begun = records.filter(
    (r): r is Extract<JournalRecord, { t: "begin" }> => r.t === "begin" && !undoneBefore.has(r.n),
  );
  const undone: Change[] = [];
  const packagesKept: string[] = [];
  const problems: string[] = [];
  const refresh: string[][] = [];
  const last: string[][] = [];
  for (const rec of [...begun].reverse()) {
    const c = rec.change;
    try {
      if (c.kind === "command" && c.refresh) {
        if (!refresh.some((a) => a.join(" ") === c.argv.join(" "))) refresh.unshift(c.argv);
        // e.g. stop the gateway before its user is removed; it is restarted at the end.
        if (c.undo) await runOrThrow(host, c.undo);
      } else if (c.kind === "package") {
        packagesKept.push(...(rec.packagesAdded ?? []));
      } else if (c.kind === "command" && c.undoLast) {
        if (c.undo) last.unshift(c.undo);
      } else if (c.kind === "command") {
        if (c.undo) {
          const [cmd, ...args] = c.undo;
          const r = await host.run(cmd!, args, { timeoutMs: 120_000 });
          const why = `${c.undo.join(" ")} exited ${r.code}: ${r.stderr.trim().split("\n").pop() ?? ""}`;
          if (r.code !== 0)
            throw new Error(
              done.has(rec.n) ? why : `${why} (the run stopped while it ran; it may never have run)`,
            );
        }
      } else if (c.kind === "move") {
        const [from, to] = rec.saved;
        // Only when the move happened: the destination was absent before and the source is gone now.
        if (
          from?.state !== "absent" &&
          to?.state === "absent" &&
          (await host.lstat(c.to)) &&
          !(await host.lstat(c.from))
        ) {
          await writer.rename(c.to, c.from);
        }
      } else {
        const w = confinedTo(writer, "within" in c ? c.within : undefined);
        for (const s of [...rec.saved].reverse()) await restore(host, writer, w, runDir, s);
      }
      undone.push(c);
    } catch (err) {
      problems.push(`${describeChange(c)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // Services re-read the restored files last, in the order the run first asked them to; then
  // what was stopped for the run starts again.
  for (const argv of [...refresh, ...last]) {
    const [cmd, ...args] = argv;
    try {
      const r = await host.run(cmd!, args, { timeoutMs: 120_000 });
      if (r.code !== 0)
        problems.push(`${argv.join(" ")} exited ${r.code}: ${r.stderr.trim().split("\n").pop() ?? ""}`);
    } catch (err) {
      problems.push(`${argv.join(" ")}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { undone, packagesKept, problems };
}

async function runOrThrow(host: Host, argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  const r = await host.run(cmd!, args, { timeoutMs: 120_000 });
  if (r.code !== 0)
    throw new Error(`${argv.join(" ")} exited ${r.code}: ${r.stderr.trim().split("\n").pop() ?? ""}`);
}

async function restore(
  host: Host,
  writer: Writer,
  /** The change's own writes: kept inside its tree when it names one (see confinedTo). */
  w: ConfinedWrites,
  runDir: string,
  s: Saved,
): Promise<void> {
  const now = await host.lstat(s.path);
  switch (s.state) {
    case "absent":
      if (now) await writer.remove(s.path);
      return;
    case "file": {
      const bytes = await readBlob(runDir, s.blob, s.sha256, `${s.path} as it is`);
      if (now?.type === "dir") throw new Error(`${s.path} is now a directory; left it as it is`);
      await w.writeFile(s.path, bytes, { mode: s.mode, uid: s.uid, gid: s.gid });
      return;
    }
    case "symlink":
      if (now) await writer.remove(s.path);
      await writer.symlink(s.target, s.path);
      await writer.chown(s.path, s.uid, s.gid);
      return;
    case "dir":
      if (!now) await writer.mkdir(s.path, { mode: s.mode, uid: s.uid, gid: s.gid });
      await writer.chmod(s.path, s.mode);
      await writer.chown(s.path, s.uid, s.gid);
      return;
    case "owners":
      await restoreOwners(host, writer, runDir, s);
      return;
    case "meta":
      if (!now) throw new Error(`${s.path} no longer exists`);
      await w.chmod(s.path, s.mode);
      await w.chown(s.path, s.uid, s.gid);
      return;
  }
}

/** The run `rollback` with no argument means: the latest that changed something and is not undone. */
export function latestUndoable(runs: RunSummary[]): RunSummary | undefined {
  return [...runs].reverse().find((r) => r.begun > 0 && !r.rolledBack);
}

export async function rollbackRun(
  host: Host,
  writer: Writer,
  stateDir: string,
  runId?: string,
): Promise<RollbackResult> {
  let id = runId;
  if (!id) {
    const runs = await listRuns(stateDir);
    const last = latestUndoable(runs);
    if (!last)
      throw new Error(
        `no run to roll back in ${path.join(stateDir, "runs")}: none changed anything, or all were rolled back`,
      );
    id = last.id;
  }
  const { summary, records } = await readRun(stateDir, id);
  if (summary.rolledBack) throw new Error(`run ${id} was already rolled back`);
  const result = await rollbackRecords(host, writer, summary.dir, records);
  const journal = await Journal.reopen(summary.dir);
  await journal.append({ t: "rolledback", at: new Date().toISOString(), problems: result.problems });
  await journal.close();
  return { runId: id, ...result };
}
