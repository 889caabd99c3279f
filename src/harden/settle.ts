import { HostError } from "../host/errors.js";
import type { Host } from "../host/host.js";
import { unifiedDiff } from "../render/diff.js";
import { resolveIds } from "../change/perform.js";
import { treeNeedsChown } from "../change/owners.js";
import { changePaths, type Change } from "../change/change.js";

export interface SettledChange {
  change: Change;
  /** For a file: the unified diff from what is there now. */
  diff?: string;
}

async function ids(host: Host, owner: string, group: string): Promise<{ uid: number; gid: number } | null> {
  try {
    return await resolveIds(host, owner, group);
  } catch {
    // The user is created by an earlier change of the same plan.
    return null;
  }
}

async function readText(host: Host, p: string): Promise<string | undefined> {
  try {
    return await host.readFile(p);
  } catch (err) {
    if (err instanceof HostError) return undefined;
    throw err;
  }
}

/**
 * Drop what already holds on the live system: a file with the same bytes, mode and owner, a
 * mode or owner already set, a command needed only for files that do not change. Applying a
 * plan and planning again therefore gives an empty plan.
 */
export async function settle(host: Host, changes: Change[]): Promise<SettledChange[]> {
  const out: SettledChange[] = [];
  for (const c of changes) {
    const st = "path" in c ? await host.lstat(c.path) : null;
    switch (c.kind) {
      case "file": {
        const before = st?.type === "file" ? await readText(host, c.path) : undefined;
        const want = await ids(host, c.owner, c.group);
        const same =
          before === c.content &&
          st?.mode === c.mode &&
          want !== null &&
          st.uid === want.uid &&
          st.gid === want.gid;
        if (!same)
          out.push({
            change: c,
            diff: unifiedDiff(before ?? "", c.content, before === undefined ? "/dev/null" : c.path, c.path),
          });
        break;
      }
      case "mkdir":
        if (st?.type !== "dir") out.push({ change: c });
        break;
      case "chmod":
        if (st ? st.mode !== c.mode : !c.optional) out.push({ change: c });
        break;
      case "chown": {
        const want = await ids(host, c.owner, c.group);
        if (!st ? !c.optional : !want || st.uid !== want.uid || st.gid !== want.gid) out.push({ change: c });
        break;
      }
      case "chown-tree": {
        const want = await ids(host, c.owner, c.group);
        // A tree that is not there yet is moved there by an earlier change of the plan.
        if (!st || !want || (await treeNeedsChown(host, c.path, want.uid, want.gid))) out.push({ change: c });
        break;
      }
      case "remove":
        if (st) out.push({ change: c });
        break;
      case "move":
        if ((await host.lstat(c.from)) || !(await host.lstat(c.to))) out.push({ change: c });
        break;
      case "command":
        if (!c.onlyIf || out.some((s) => changePaths(s.change).some((p) => c.onlyIf!.includes(p))))
          out.push({ change: c });
        break;
      case "package":
        out.push({ change: c });
        break;
    }
  }
  return out;
}
