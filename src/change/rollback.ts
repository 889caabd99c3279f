import path from "node:path";
import type { Host } from "../host/host.js";
import { confinedTo, type Writer } from "../host/writer.js";
import { actsOnRunningSystem, changePaths, describeChange, type Change } from "./change.js";
import { Journal, listRuns, readRun, type JournalRecord, type RunSummary, type Saved } from "./journal.js";
import { rulesetFiles } from "./perform.js";
import { loadRuleset, removeRuleset, RulesetError, type Ruleset, type Step } from "./ruleset.js";
import { restore } from "./saved.js";
import { ClawguardError } from "../errors.js";

export interface RollbackOptions {
  /**
   * Put back files only: leave commands, units and rulesets as they run now. They are listed
   * in `left`, and the run is marked rolled back all the same.
   */
  leaveRunning?: boolean;
}

export interface Undone {
  /** Changes undone, last first. */
  undone: Change[];
  /** The paths the undone changes touched and what each is again. */
  restored: Array<{ path: string; to: Saved["state"] }>;
  /** Packages the run installed; they stay (removing them could take others with them). */
  packagesKept: string[];
  /** What ran on the live system to undo the run. */
  steps: Step[];
  /** Changes left as they are (see RollbackOptions.leaveRunning). */
  left: Change[];
  /** What could not be put back, each with the path or command and why. */
  problems: string[];
}

export interface RollbackResult extends Undone {
  runId: string;
}

type Begin = Extract<JournalRecord, { t: "begin" }>;

/** Something to do once the files are back, keyed so that it is done once. */
interface Deferred {
  key: string;
  run: () => Promise<Step[]>;
}

/** Run a command in the host's root; its failure is a step that says why, never a throw. */
async function hostStep(host: Host, argv: string[]): Promise<Step> {
  const [cmd, ...args] = argv;
  try {
    const r = await host.run(cmd!, args, { timeoutMs: 120_000 });
    const last = r.stderr.trim().split("\n").pop() ?? "";
    return r.code === 0
      ? { command: argv.join(" "), ok: true }
      : { command: argv.join(" "), ok: false, detail: `exited ${r.code}: ${last}` };
  } catch (err) {
    return { command: argv.join(" "), ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

function failedSteps(steps: Step[]): string[] {
  return steps.filter((s) => !s.ok).map((s) => `${s.command} ${s.detail ?? "failed"}`);
}

/**
 * Undo the journaled changes of one run, last first. A change that was begun but never marked
 * done (a crash) is undone too: restoring a saved state is the same whether or not the change
 * got to happen. What acts on the running system goes back to how it was before the change:
 * a unit or ruleset that was not running is stopped or removed at once; one that was comes
 * back from the restored files once they are all back.
 */
export async function rollbackRecords(
  host: Host,
  writer: Writer,
  runDir: string,
  records: JournalRecord[],
  opts: RollbackOptions = {},
): Promise<Undone> {
  const done = new Set(records.filter((r) => r.t === "done").map((r) => (r as { n: number }).n));
  const undoneBefore = new Set(records.flatMap((r) => (r.t === "undone" ? r.n : [])));
  const begun = records.filter((r): r is Begin => r.t === "begin" && !undoneBefore.has(r.n));
  const out: Undone = { undone: [], restored: [], packagesKept: [], steps: [], left: [], problems: [] };
  const refresh: Deferred[] = [];
  const last: Deferred[] = [];
  const defer = (list: Deferred[], d: Deferred) => {
    if (!list.some((x) => x.key === d.key)) list.unshift(d);
  };
  const now = async (argv: string[], crashed = false) => {
    const s = await hostStep(host, argv);
    out.steps.push(s);
    if (!s.ok)
      throw new Error(
        `${argv.join(" ")} ${s.detail}${crashed ? " (the run stopped while it ran; it may never have run)" : ""}`,
      );
  };
  const later = (argv: string[]): Deferred => ({
    key: argv.join(" "),
    run: async () => [await hostStep(host, argv)],
  });
  for (const rec of [...begun].reverse()) {
    const c = rec.change;
    if (opts.leaveRunning && actsOnRunningSystem(c)) {
      out.left.push(c);
      continue;
    }
    try {
      if (c.kind === "command" && c.refresh) {
        defer(refresh, later(c.argv));
        // e.g. stop the gateway before its user is removed; it is restarted at the end.
        if (c.undo) await now(c.undo);
      } else if (c.kind === "package") {
        out.packagesKept.push(...(rec.packagesAdded ?? []));
      } else if (c.kind === "command" && c.undoLast) {
        if (c.undo) defer(last, later(c.undo));
      } else if (c.kind === "command") {
        if (c.undo) await now(c.undo, !done.has(rec.n));
      } else if (c.kind === "service") {
        if (rec.was?.active) defer(refresh, later(["systemctl", "restart", c.unit]));
        else await now(["systemctl", "stop", c.unit]);
      } else if (c.kind === "ruleset") {
        if (rec.was?.active)
          defer(refresh, { key: describeChange(c), run: () => reloadRuleset(host, c.ruleset) });
        else {
          const steps = await removeRuleset(c.ruleset);
          out.steps.push(...steps);
          if (failedSteps(steps).length) throw new Error(failedSteps(steps).join("; "));
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
      out.undone.push(c);
      const own = changePaths(c);
      for (const s of rec.saved) if (own.includes(s.path)) out.restored.push({ path: s.path, to: s.state });
    } catch (err) {
      out.problems.push(`${describeChange(c)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // Services re-read the restored files last, in the order the run first asked them to; then
  // what was stopped for the run starts again.
  for (const d of [...refresh, ...last]) {
    const steps = await d.run();
    out.steps.push(...steps);
    out.problems.push(...failedSteps(steps));
  }
  return out;
}

/** Load a ruleset from its restored files; a failure is in the steps, for the problems. */
async function reloadRuleset(host: Host, r: Ruleset): Promise<Step[]> {
  try {
    return await loadRuleset(r, await rulesetFiles(host, r));
  } catch (err) {
    if (err instanceof RulesetError) return err.steps;
    throw err;
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
  opts: RollbackOptions = {},
): Promise<RollbackResult> {
  let id = runId;
  if (!id) {
    const runs = await listRuns(stateDir);
    const latest = latestUndoable(runs);
    if (!latest)
      throw new ClawguardError(
        "CG_RUN_NOT_FOUND",
        `no run to roll back in ${path.join(stateDir, "runs")}: none changed anything, or all were rolled back`,
      );
    id = latest.id;
  }
  const { summary, records } = await readRun(stateDir, id);
  if (summary.rolledBack) throw new ClawguardError("CG_RUN_ROLLED_BACK", `run ${id} was already rolled back`);
  const result = await rollbackRecords(host, writer, summary.dir, records, opts);
  const journal = await Journal.reopen(summary.dir);
  await journal.append({ t: "rolledback", at: new Date().toISOString(), problems: result.problems });
  await journal.close();
  return { runId: id, ...result };
}
