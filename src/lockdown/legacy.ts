import { promises as fs } from "node:fs";
import path from "node:path";
import type { Change } from "../change/change.js";
import {
  Journal,
  readRun,
  runsDir,
  runStamp,
  writeBlob,
  type Saved,
  type WasActive,
} from "../change/journal.js";
import { isMissing } from "../host/errors.js";
import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { lockdownRuleset, systemdRunning } from "./live.js";
import { UNIT_NAME, type Backend } from "./units.js";
import { ClawguardError } from "../errors.js";

/**
 * Before lockdown went through the change engine it kept a record of its own: state.json and
 * the backups beside it. Such a record becomes a lockdown run the first time lockdown or
 * rollback runs here, and then rolls back like any other run.
 */
const LEGACY_DIR = "/var/lib/clawguard/lockdown";
const LEGACY_STATE = `${LEGACY_DIR}/state.json`;
const LEGACY_BACKUP = `${LEGACY_DIR}/backup`;

/** What a path was before lockdown touched it; a file's bytes are in `blob`, a path in the root. */
type LegacyBefore =
  | { state: "absent" }
  | { state: "file"; mode: number; uid: number; gid: number; blob: string; sha256: string }
  | { state: "symlink"; target: string; uid: number; gid: number };

export interface LegacyState {
  schema: "clawguard.lockdown-state/v1";
  appliedAt: string;
  backend: Backend;
  shield: { host: string; port: number; addresses: string[]; pinned: boolean; proxyUrl: string };
  gatewayUnits: string[];
  /** In the order they were first changed. */
  entries: Array<{ path: string; before: LegacyBefore }>;
  /** Directories lockdown created. */
  dirs: string[];
}

export async function readLegacyState(host: Host): Promise<LegacyState | null> {
  let text: string;
  try {
    text = await host.readFile(LEGACY_STATE);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  let parsed: LegacyState;
  try {
    parsed = JSON.parse(text) as LegacyState;
  } catch (err) {
    throw new ClawguardError(
      "CG_LOCKDOWN_STATE_INVALID",
      `${LEGACY_STATE} is not valid JSON (${err instanceof Error ? err.message : String(err)}); ` +
        `restore it from ${LEGACY_BACKUP} by hand or remove the lockdown files listed in the plan`,
    );
  }
  if (parsed.schema !== "clawguard.lockdown-state/v1")
    throw new ClawguardError("CG_LOCKDOWN_STATE_INVALID", `unknown schema ${String(parsed.schema)}`, {
      where: LEGACY_STATE,
    });
  return parsed;
}

/** The run a record becomes is named for its apply time, so it sorts before every later run. */
function legacyRunId(s: LegacyState): string {
  const at = new Date(s.appliedAt);
  return `${Number.isNaN(at.getTime()) ? "19700101T000000Z" : runStamp(at)}-lockdown-v1`;
}

/**
 * Turn the record into a run (once: a run already written is kept) and remove it. Returns the
 * run's id, or null when there was no record.
 */
export async function migrateLegacyState(
  host: Host,
  writer: Writer,
  stateDir: string,
): Promise<string | null> {
  const state = await readLegacyState(host);
  if (!state) return null;
  const id = legacyRunId(state);
  const written = await readRun(stateDir, id).then(
    (r) => r.summary.status === "ok",
    () => false,
  );
  if (!written) await writeRun(host, writer, stateDir, id, state);
  await forget(host, writer, state);
  return id;
}

/** One record of the run: a change, what it replaced, and what ran before it. */
interface Entry {
  change: Change;
  saved: Saved[];
  was?: WasActive;
}

async function writeRun(host: Host, writer: Writer, stateDir: string, id: string, state: LegacyState) {
  // What a crash left of an earlier try is written again from the record.
  await fs.rm(path.join(runsDir(stateDir), id), { recursive: true, force: true });
  const journal = await Journal.create(stateDir, id);
  const root = { owner: "root", group: "root" };
  const steps: Entry[] = state.dirs.map((d) => ({
    change: { kind: "mkdir", path: d, mode: 0o755, ...root, fixes: [] },
    saved: [{ path: d, state: "absent" }],
  }));
  for (const e of state.entries) {
    const n = steps.length + 1;
    steps.push({
      change: await asChange(host, writer, e.path),
      saved: [await carryOver(host, journal.dir, n, e)],
    });
  }
  // The rules and the unit ran only where the record was made live; undoing them where they do
  // not run is no error.
  steps.push({
    change: { kind: "ruleset", ruleset: lockdownRuleset(state.backend), fixes: [] },
    saved: [],
    was: { active: false },
  });
  if (systemdRunning(host.root)) {
    steps.push({
      change: { kind: "command", argv: ["systemctl", "daemon-reload"], refresh: true, live: true, fixes: [] },
      saved: [],
    });
    steps.push({
      change: { kind: "service", unit: UNIT_NAME, fixes: [] },
      saved: [],
      was: { active: false },
    });
    for (const u of state.gatewayUnits)
      steps.push({
        change: {
          kind: "command",
          argv: ["systemctl", "try-restart", u],
          refresh: true,
          live: true,
          fixes: [],
        },
        saved: [],
      });
  }
  await journal.append({
    t: "run",
    id,
    startedAt: state.appliedAt,
    root: host.root,
    changes: steps.length,
    kind: "lockdown",
    about: {
      shield: { host: state.shield.host, port: state.shield.port, addresses: state.shield.addresses },
      backend: state.backend,
      migratedFrom: LEGACY_STATE,
    },
  });
  for (const [i, s] of steps.entries()) {
    await journal.append({
      t: "begin",
      n: i + 1,
      change: s.change,
      saved: s.saved,
      ...(s.was ? { was: s.was } : {}),
    });
    await journal.append({ t: "done", n: i + 1 });
  }
  await journal.append({ t: "end", status: "ok" });
  await journal.close();
}

/** What lockdown did to `p`, as it stands now: the file or link it left there. */
async function asChange(host: Host, writer: Writer, p: string): Promise<Change> {
  const root = { owner: "root", group: "root" };
  const st = await host.lstat(p);
  if (st?.type === "symlink")
    return { kind: "symlink", path: p, target: await writer.readlink(p), ...root, fixes: [] };
  const content = st?.type === "file" ? await host.readFile(p) : "";
  return { kind: "file", path: p, content, mode: st?.mode ?? 0o644, ...root, fixes: [] };
}

/**
 * The record's backup of `p` copied into the run. It keeps the record's checksum, so a backup
 * changed since is refused at rollback as it was before; one that is gone is named there.
 */
async function carryOver(
  host: Host,
  runDir: string,
  n: number,
  e: LegacyState["entries"][number],
): Promise<Saved> {
  const b = e.before;
  if (b.state !== "file") return { path: e.path, ...b };
  const blob = `blobs/${n}-${path.posix.basename(e.path).replace(/[^A-Za-z0-9._-]/g, "_")}`;
  try {
    await writeBlob(runDir, blob, await host.readBytes(b.blob));
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  return { path: e.path, state: "file", mode: b.mode, uid: b.uid, gid: b.gid, blob, sha256: b.sha256 };
}

/** Remove the record and its backups, now that a run holds them. */
async function forget(host: Host, writer: Writer, state: LegacyState): Promise<void> {
  for (const e of state.entries)
    if (e.before.state === "file" && (await host.lstat(e.before.blob))) await writer.remove(e.before.blob);
  await writer.remove(LEGACY_STATE);
  for (const d of [LEGACY_BACKUP, LEGACY_DIR]) {
    const left = await host.readDir(d).catch(() => null);
    if (left && left.length === 0) await writer.remove(d);
  }
}
