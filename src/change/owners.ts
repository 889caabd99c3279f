import { HostError } from "../host/errors.js";
import type { Host } from "../host/host.js";
import type { Writer } from "../host/writer.js";
import { readBlob, writeBlob, type Saved } from "./journal.js";

/** One entry of a tree as found when walked: path relative to the top ("" is the top itself). */
export interface OwnedEntry {
  rel: string;
  uid: number;
  gid: number;
  symlink: boolean;
}

function gone(err: unknown): boolean {
  return err instanceof HostError && err.problem.kind === "missing";
}

/**
 * Every entry under `top` (the top included), symlinks as themselves, never followed. Entries
 * that vanish while walked (a program deleting its temp files) are left out.
 */
export async function walkOwners(host: Host, top: string): Promise<OwnedEntry[]> {
  const out: OwnedEntry[] = [];
  const rootStat = await host.lstat(top);
  if (!rootStat) return out;
  out.push({ rel: "", uid: rootStat.uid, gid: rootStat.gid, symlink: rootStat.type === "symlink" });
  if (rootStat.type !== "dir") return out;
  const dirs = [""];
  while (dirs.length) {
    const rel = dirs.pop()!;
    let names;
    try {
      names = await host.readDir(rel ? `${top}/${rel}` : top);
    } catch (err) {
      if (gone(err)) continue;
      throw err;
    }
    for (const e of names) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      const st = await host.lstat(`${top}/${child}`);
      if (!st) continue;
      out.push({ rel: child, uid: st.uid, gid: st.gid, symlink: st.type === "symlink" });
      if (st.type === "dir") dirs.push(child);
    }
  }
  return out;
}

/**
 * Symbolic links keep their owner: it grants nothing outside sticky directories, and changing it
 * would mean a chown by path, which a directory swapped for a link could send outside the tree.
 */
const owned = (e: OwnedEntry) => !e.symlink;

/** Whether some entry of the tree is not owned by uid:gid (settle uses it). */
export async function treeNeedsChown(host: Host, top: string, uid: number, gid: number): Promise<boolean> {
  return (await walkOwners(host, top)).filter(owned).some((e) => e.uid !== uid || e.gid !== gid);
}

/** Journal the owners of every entry under `top` into a blob of the run, fsynced. */
export async function saveOwners(host: Host, runDir: string, n: number, top: string): Promise<Saved> {
  const entries = await walkOwners(host, top);
  if (entries.length === 0) throw new Error(`${top} does not exist`);
  const bytes = Buffer.from(JSON.stringify(entries.map((e) => [e.rel, e.uid, e.gid])));
  const blob = `blobs/${n}-owners.json`;
  const sha256 = await writeBlob(runDir, blob, bytes);
  return {
    path: top,
    state: "owners",
    uid: entries[0]!.uid,
    gid: entries[0]!.gid,
    blob,
    sha256,
    entries: entries.length,
  };
}

/**
 * chown of one entry through a handle that must be inside the tree (see Writer.chownWithin); an
 * entry deleted since the walk is no error.
 */
async function chownEntry(writer: Writer, top: string, rel: string, uid: number, gid: number): Promise<void> {
  try {
    await writer.chownWithin(top, rel ? `${top}/${rel}` : top, uid, gid);
  } catch (err) {
    if (!gone(err)) throw err;
  }
}

/** Give every entry under `top`, as it is now, to uid:gid. */
export async function chownTree(
  host: Host,
  writer: Writer,
  top: string,
  uid: number,
  gid: number,
): Promise<void> {
  if (!(await host.lstat(top))) throw new Error(`${top} does not exist`);
  for (const e of (await walkOwners(host, top)).filter(owned)) {
    if (e.uid === uid && e.gid === gid) continue;
    await chownEntry(writer, top, e.rel, uid, gid);
  }
}

/**
 * Put the journaled owners back: each entry that was there gets its old owner; entries made
 * since (by the service under its new user) get the owner the top directory had.
 */
export async function restoreOwners(
  host: Host,
  writer: Writer,
  runDir: string,
  s: Extract<Saved, { state: "owners" }>,
): Promise<void> {
  const bytes = await readBlob(runDir, s.blob, s.sha256, `the owners under ${s.path} as they are`);
  const before = new Map<string, [number, number]>();
  for (const [rel, uid, gid] of JSON.parse(bytes.toString("utf8")) as Array<[string, number, number]>)
    before.set(rel, [uid, gid]);
  if (!(await host.lstat(s.path))) throw new Error(`${s.path} no longer exists`);
  for (const e of (await walkOwners(host, s.path)).filter(owned)) {
    const [uid, gid] = before.get(e.rel) ?? [s.uid, s.gid];
    if (e.uid === uid && e.gid === gid) continue;
    await chownEntry(writer, s.path, e.rel, uid, gid);
  }
}
