import path from "node:path";
import { isInstalled } from "../facts/packages.js";
import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { describeChange, type Change } from "./change.js";
import { Journal, newRunId, type JournalRecord, type RunKind, type Saved } from "./journal.js";
import { saveOwners } from "./owners.js";
import { installedPackages, perform } from "./perform.js";
import { rollbackRecords } from "./rollback.js";
import type { Step } from "./ruleset.js";
import { pathsToSave, save, wasActive } from "./saved.js";
import { ClawguardError } from "../errors.js";

export interface ApplyOptions {
  /** Where runs are kept, a path on this machine; default `<root>/var/lib/clawguard`. */
  stateDir?: string;
  runId?: string;
  /** The command the run is for; `clawguard rollback --list` shows it. Default harden. */
  kind?: RunKind;
  /** What the run is for, in the command's own terms, kept in the journal. */
  about?: Record<string, unknown>;
  /** Called after each journal record is on disk (progress output). */
  onRecord?: (r: JournalRecord) => void;
}

export interface ApplyResult {
  runId: string;
  runDir: string;
  applied: Change[];
  /** What ran on the live system (commands, units, rulesets), in order. */
  steps: Step[];
}

/** A run that stopped: what failed and, when it was undone, what the undo could not restore. */
export class ApplyError extends ClawguardError {
  constructor(
    message: string,
    readonly runId: string,
    readonly rollbackProblems: string[] = [],
  ) {
    super("CG_APPLY_FAILED", message);
  }
}

export function defaultStateDir(root: string): string {
  return path.join(root, "var/lib/clawguard");
}

/**
 * Carry out a plan: packages first (a run whose packages cannot be installed changes nothing),
 * then each change in order, each one journaled with a backup of what it replaces (and of
 * whether what it acts on was running) before it is made. When a change fails, the run is
 * rolled back and ApplyError says which change and why.
 */
export async function applyPlan(
  host: Host,
  writer: Writer,
  changes: Change[],
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  await refuseWhatCannotRun(host, changes);
  const stateDir = opts.stateDir ?? defaultStateDir(host.root);
  const runId = opts.runId ?? newRunId();
  const journal = await Journal.create(stateDir, runId, opts.onRecord);
  const ordered = [
    ...changes.filter((c) => c.kind === "package"),
    ...changes.filter((c) => c.kind !== "package"),
  ];
  await journal.append({
    t: "run",
    id: runId,
    startedAt: new Date().toISOString(),
    root: host.root,
    changes: ordered.length,
    kind: opts.kind ?? "harden",
    ...(opts.about ? { about: opts.about } : {}),
  });
  const applied: Change[] = [];
  const steps: Step[] = [];
  const records: JournalRecord[] = [];
  let n = 0;
  try {
    for (const change of ordered) {
      n++;
      const saved: Saved[] = [];
      if (change.kind === "chown-tree") saved.push(await saveOwners(host, journal.dir, n, change.path));
      for (const p of await pathsToSave(host, change)) {
        const s = await save(host, journal.dir, n, p.path, p.content);
        // An optional chmod or chown of a path that is gone has nothing to undo.
        if (s.state === "absent" && "optional" in change && change.optional) continue;
        saved.push(s);
      }
      const begin: JournalRecord = { t: "begin", n, change, saved };
      const was = await wasActive(host, change);
      if (was) begin.was = was;
      if (change.kind === "package") {
        const installed = await installedPackages(host);
        begin.packagesAdded = change.names.filter((x) => !isInstalled(installed, x));
      }
      await journal.append(begin);
      records.push(begin);
      steps.push(...(await perform(host, writer, change)));
      await journal.append({ t: "done", n });
      records.push({ t: "done", n });
      applied.push(change);
    }
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const message = `change ${n} of ${ordered.length} failed (${describeChange(ordered[n - 1]!)}): ${why}`;
    await journal.append({ t: "end", status: "failed", error: message });
    const undone = await rollbackRecords(host, writer, journal.dir, records);
    await journal.append({ t: "rolledback", at: new Date().toISOString(), problems: undone.problems });
    await journal.close();
    const nothing =
      applied.length === 0
        ? " Nothing was changed."
        : ` The ${applied.length} changes before it were undone.`;
    throw new ApplyError(message + nothing, runId, undone.problems);
  }
  await journal.append({ t: "end", status: "ok" });
  await journal.close();
  return { runId, runDir: journal.dir, applied, steps };
}

async function refuseWhatCannotRun(host: Host, changes: Change[]): Promise<void> {
  const needsRun = changes.filter(
    (c) => c.kind === "command" || c.kind === "package" || c.kind === "service",
  );
  if (needsRun.length === 0 || host.root === "/" || host.isRoot) return;
  // Fail closed before touching anything: a half-applied plan is worse than none.
  throw new ApplyError(
    `the plan runs ${needsRun.length} commands (first: ${describeChange(needsRun[0]!)}), ` +
      `which cannot run in ${host.root} without root. Nothing was changed. ` +
      `Run as root, or leave those layers out with --skip.`,
    "",
  );
}
