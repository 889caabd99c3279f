import { promises as fs } from "node:fs";
import path from "node:path";
import { realNoFollow, type Host } from "../host/host.js";
import type { ConfinedWrites, Writer } from "../host/writer.js";
import type { Change } from "./change.js";
import { readBlob, writeBlob, type Saved, type WasActive } from "./journal.js";
import { restoreOwners } from "./owners.js";
import { rulesetLoaded } from "./ruleset.js";

/** Ancestors of `p` that do not exist yet, outermost first: they are created (and journaled) too. */
export async function missingAncestors(host: Host, p: string): Promise<string[]> {
  const out: string[] = [];
  for (let d = path.posix.dirname(p); d !== "/" && !(await host.lstat(d)); d = path.posix.dirname(d))
    out.unshift(d);
  return out;
}

/** The paths a change can alter, and whether their content (or only mode and owner) must be kept. */
export async function pathsToSave(host: Host, c: Change): Promise<Array<{ path: string; content: boolean }>> {
  switch (c.kind) {
    case "mkdir":
    case "file":
    case "symlink":
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

/** What `p` is now, its bytes written to the run's blobs: enough to put it back byte for byte. */
export async function save(
  host: Host,
  runDir: string,
  n: number,
  p: string,
  content: boolean,
): Promise<Saved> {
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
  return { path: p, state: "file", mode: st.mode, uid: st.uid, gid: st.gid, blob, sha256 };
}

/** Whether what a change acts on in the running system was active before it. */
export async function wasActive(host: Host, c: Change): Promise<WasActive | undefined> {
  if (c.kind === "ruleset") return { active: (await rulesetLoaded(c.ruleset)).loaded };
  if (c.kind === "service") {
    // `systemctl is-active` exits 0 only for an active unit; anything else (inactive, failed,
    // unknown) is a unit that was not running.
    const r = await host.run("systemctl", ["is-active", "--quiet", c.unit]);
    return { active: r.code === 0 };
  }
  return undefined;
}

/** Put one saved path back as it was. */
export async function restore(
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
