import { promises as fs } from "node:fs";
import path from "node:path";
import { HostError, isMissing } from "../host/errors.js";
import { DPKG_STATUS, isInstalled, parseDpkgStatus, type PackagesFact } from "../facts/packages.js";
import { parseGroup, parsePasswd } from "../facts/users.js";
import type { Host } from "../host/host.js";
import { confinedTo, type Writer } from "../host/writer.js";
import { describeChange, type Change } from "./change.js";
import { chownTree, saveOwners } from "./owners.js";
import { Journal, newRunId, writeBlob, type JournalRecord, type Saved } from "./journal.js";
import { rollbackRecords } from "./rollback.js";

export interface ApplyOptions {
  /** Where runs are kept, a path on this machine; default `<root>/var/lib/clawguard`. */
  stateDir?: string;
  runId?: string;
  /** Called after each journal record is on disk (progress output). */
  onRecord?: (r: JournalRecord) => void;
}

export interface ApplyResult {
  runId: string;
  runDir: string;
  applied: Change[];
}

/** A run that stopped: what failed and, when it was undone, what the undo could not restore. */
export class ApplyError extends Error {
  constructor(
    message: string,
    readonly runId: string,
    readonly rollbackProblems: string[] = [],
  ) {
    super(message);
    this.name = "ApplyError";
  }
}

export function defaultStateDir(root: string): string {
  return path.join(root, "var/lib/clawguard");
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive", NEEDRESTART_MODE: "a" };
const APT_TIMEOUT = 15 * 60_000;
const UNREACHABLE =
  /Temporary failure resolving|Could not resolve|Could not connect|Failed to fetch|Unable to fetch|Network is unreachable|Connection timed out/i;

/**
 * Carry out a plan: packages first (a run whose packages cannot be installed changes nothing),
 * then each change in order, each one journaled with a backup of what it replaces before it is
 * made. When a change fails, the run is rolled back and ApplyError says which change and why.
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
  });
  const applied: Change[] = [];
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
      if (change.kind === "package") {
        const installed = await installedPackages(host);
        begin.packagesAdded = change.names.filter((x) => !isInstalled(installed, x));
      }
      await journal.append(begin);
      records.push(begin);
      await perform(host, writer, change);
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
  return { runId, runDir: journal.dir, applied };
}

async function refuseWhatCannotRun(host: Host, changes: Change[]): Promise<void> {
  const needsRun = changes.filter((c) => c.kind === "command" || c.kind === "package");
  if (needsRun.length === 0 || host.root === "/" || host.isRoot) return;
  // Fail closed before touching anything: a half-applied plan is worse than none.
  throw new ApplyError(
    `the plan runs ${needsRun.length} commands (first: ${describeChange(needsRun[0]!)}), ` +
      `which cannot run in ${host.root} without root. Nothing was changed. ` +
      `Run as root, or leave those layers out with --skip.`,
    "",
  );
}

/** Ancestors of `p` that do not exist yet, outermost first: they are created (and journaled) too. */
async function missingAncestors(host: Host, p: string): Promise<string[]> {
  const out: string[] = [];
  for (let d = path.posix.dirname(p); d !== "/" && !(await host.lstat(d)); d = path.posix.dirname(d))
    out.unshift(d);
  return out;
}

async function pathsToSave(host: Host, c: Change): Promise<Array<{ path: string; content: boolean }>> {
  switch (c.kind) {
    case "mkdir":
    case "file":
      return [...(await missingAncestors(host, c.path)), c.path].map((p) => ({ path: p, content: true }));
    case "remove":
      return [{ path: c.path, content: true }];
    case "chmod":
    case "chown":
      return [{ path: c.path, content: false }];
    case "move":
      return [
        { path: c.from, content: false },
        { path: c.to, content: false },
      ];
    default:
      return [];
  }
}

async function save(host: Host, runDir: string, n: number, p: string, content: boolean): Promise<Saved> {
  const st = await host.lstat(p);
  if (!st) return { path: p, state: "absent" };
  if (!content || st.type === "dir") {
    return { path: p, state: content ? "dir" : "meta", mode: st.mode, uid: st.uid, gid: st.gid };
  }
  if (st.type === "symlink") {
    const target = await fs.readlink(await realNoFollow(host, p));
    return { path: p, state: "symlink", target, uid: st.uid, gid: st.gid };
  }
  if (st.type !== "file")
    throw new Error(`${p} is not a regular file, a directory or a symlink; refusing to replace it`);
  const bytes = await host.readBytes(p);
  const blob = `blobs/${n}-${path.posix.basename(p).replace(/[^A-Za-z0-9._-]/g, "_")}`;
  const sha256 = await writeBlob(runDir, blob, bytes);
  return {
    path: p,
    state: "file",
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    blob,
    sha256,
  };
}

async function realNoFollow(host: Host, p: string): Promise<string> {
  const abs = path.posix.resolve("/", p);
  return path.join(await host.resolve(path.posix.dirname(abs)), path.posix.basename(abs));
}

/** Owner and group names (or numbers) as the target system knows them, read fresh each time. */
export async function resolveIds(
  host: Host,
  owner: string,
  group: string,
): Promise<{ uid: number; gid: number }> {
  const num = (s: string) => (/^\d+$/.test(s) ? Number(s) : undefined);
  let uid = num(owner);
  let gid = num(group);
  if (uid === undefined) {
    const u = parsePasswd(await host.readFile("/etc/passwd")).find((x) => x.name === owner);
    if (!u) throw new Error(`user "${owner}" does not exist in /etc/passwd`);
    uid = u.uid;
  }
  if (gid === undefined) {
    const g = parseGroup(await host.readFile("/etc/group")).find((x) => x.name === group);
    if (!g) throw new Error(`group "${group}" does not exist in /etc/group`);
    gid = g.gid;
  }
  return { uid, gid };
}

async function installedPackages(host: Host): Promise<PackagesFact> {
  try {
    return { installed: parseDpkgStatus(await host.readFile(DPKG_STATUS)) };
  } catch (err) {
    if (isMissing(err)) return { installed: {} };
    throw err;
  }
}

async function perform(host: Host, writer: Writer, c: Change): Promise<void> {
  switch (c.kind) {
    case "file": {
      const ids = await resolveIds(host, c.owner, c.group);
      for (const d of await missingAncestors(host, c.path)) await writer.mkdir(d, { mode: 0o755, ...ids });
      await confinedTo(writer, c.within).writeFile(c.path, c.content, { mode: c.mode, ...ids });
      return;
    }
    case "mkdir": {
      const ids = await resolveIds(host, c.owner, c.group);
      for (const d of await missingAncestors(host, c.path)) await writer.mkdir(d, { mode: 0o755, ...ids });
      await writer.mkdir(c.path, { mode: c.mode, ...ids });
      return;
    }
    case "chmod":
      await optional(c.optional, () => confinedTo(writer, c.within).chmod(c.path, c.mode));
      return;
    case "chown": {
      const ids = await resolveIds(host, c.owner, c.group);
      await optional(c.optional, () => confinedTo(writer, c.within).chown(c.path, ids.uid, ids.gid));
      return;
    }
    case "chown-tree": {
      const ids = await resolveIds(host, c.owner, c.group);
      await chownTree(host, writer, c.path, ids.uid, ids.gid);
      return;
    }
    case "move":
      if (await host.lstat(c.to)) throw new Error(`${c.to} already exists; refusing to overwrite it`);
      await writer.rename(c.from, c.to);
      return;
    case "remove":
      await writer.remove(c.path);
      return;
    case "command": {
      const [cmd, ...args] = c.argv;
      const r = await host.run(cmd!, args, { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
      return;
    }
    case "package":
      await installPackages(host, c.names);
      return;
  }
}

/** Run `fn`; when `skipMissing`, a path that no longer exists is not an error. */
async function optional(skipMissing: boolean | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(skipMissing && err instanceof HostError && err.problem.kind === "missing")) throw err;
  }
}

async function installPackages(host: Host, names: string[]): Promise<void> {
  const install = () =>
    host.run(
      "apt-get",
      [
        "install",
        "-y",
        "-q",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "Dpkg::Options::=--force-confdef",
        ...names,
      ],
      { env: APT_ENV, timeoutMs: APT_TIMEOUT },
    );
  let r = await install();
  if (
    r.code !== 0 &&
    /Unable to locate package|404\s+Not Found|has no installation candidate/i.test(r.stderr + r.stdout)
  ) {
    // Stale package lists: refresh once and try again.
    const u = await host.run("apt-get", ["update", "-q"], { env: APT_ENV, timeoutMs: APT_TIMEOUT });
    if (u.code !== 0 && UNREACHABLE.test(u.stderr + u.stdout)) {
      throw new Error(
        `apt cannot reach its mirror (${firstMatch(u.stderr + u.stdout)}); check the network or the apt proxy, then run harden again`,
      );
    }
    r = await install();
  }
  if (r.code === 0) return;
  const out = r.stderr + r.stdout;
  if (UNREACHABLE.test(out)) {
    throw new Error(
      `apt cannot reach its mirror (${firstMatch(out)}); check the network or the apt proxy, then run harden again`,
    );
  }
  throw new Error(`apt-get install ${names.join(" ")} exited ${r.code}: ${lastLines(out)}`);
}

function firstMatch(out: string): string {
  return (
    out
      .split("\n")
      .find((l) => UNREACHABLE.test(l))
      ?.trim() ?? "no route to the mirror"
  );
}

function lastLines(s: string): string {
  return s.trim().split("\n").slice(-3).join(" | ") || "no output";
}
