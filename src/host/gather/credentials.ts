import path from "node:path";
import {
  isSecretInStateDir,
  secretName,
  type CredentialsFact,
  type SecretPath,
} from "../../facts/credentials.js";
import { ok, skipped, type Fact } from "../../facts/fact.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

export const WALK_CAP = 50_000;
const SKIP_DIRS = new Set(["node_modules", ".git"]);

interface WalkState {
  out: CredentialsFact;
  seen: Set<string>;
}

async function walk(
  ctx: FactContext,
  root: string,
  classify: (rel: string, type: "file" | "dir") => boolean,
  owner: Pick<SecretPath, "expectedUid" | "expectedUser" | "rootMayOwn">,
  st: WalkState,
): Promise<void> {
  const stack: string[] = [""];
  while (stack.length > 0) {
    const rel = stack.pop()!;
    const dir = rel ? `${root}/${rel}` : root;
    const dirStat = await ctx.host.lstat(dir);
    if (!dirStat || dirStat.type !== "dir") continue;
    if (st.seen.has(dir)) continue;
    st.seen.add(dir);
    if (classify(rel, "dir"))
      st.out.secrets.push({ path: dir, type: "dir", mode: dirStat.mode, uid: dirStat.uid, ...owner });
    let entries;
    try {
      entries = await ctx.host.readDir(dir);
    } catch (err) {
      st.out.unreadable.push(toProblem(dir, err));
      continue;
    }
    for (const e of entries) {
      if (++st.out.visited > WALK_CAP) {
        st.out.truncated = true;
        return;
      }
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.type === "dir") {
        if (!SKIP_DIRS.has(e.name)) stack.push(childRel);
      } else if (e.type === "file" && classify(childRel, "file")) {
        const p = `${root}/${childRel}`;
        try {
          const s = await ctx.host.lstat(p);
          if (s) st.out.secrets.push({ path: p, type: "file", mode: s.mode, uid: s.uid, ...owner });
        } catch (err) {
          st.out.unreadable.push(toProblem(p, err));
        }
      }
    }
  }
}

async function single(
  ctx: FactContext,
  p: string,
  owner: Pick<SecretPath, "expectedUid" | "expectedUser" | "rootMayOwn">,
  st: WalkState,
) {
  if (st.seen.has(p)) return;
  st.seen.add(p);
  try {
    const s = await ctx.host.stat(p);
    if (s?.type === "file") {
      st.out.secrets.push({ path: p, type: "file", mode: s.mode, uid: s.uid, ...owner });
      st.out.roots.push(p);
    }
  } catch (err) {
    if (!isMissing(err)) st.out.unreadable.push(toProblem(p, err));
  }
}

/** Walk every install's state dir, workspace and env files, in code (no shell, any file name). */
export function gatherCredentials(ctx: FactContext): Promise<Fact<CredentialsFact>> {
  return gather("credentials", async () => {
    const [oc, users] = await Promise.all([ctx.get("openclaw"), ctx.get("users")]);
    if (oc.status !== "ok") return skipped("OpenClaw discovery failed: see the gateway layer");
    const out: CredentialsFact = { secrets: [], unreadable: [], roots: [], visited: 0, truncated: false };
    const st: WalkState = { out, seen: new Set() };
    const userList = users.status === "ok" ? users.value.users : [];
    for (const i of oc.value.installs) {
      const svc = userList.find((u) => u.name === i.runsAs);
      const owner = { expectedUid: svc?.uid, expectedUser: i.runsAs, rootMayOwn: false };
      if (i.stateDirExists) {
        out.roots.push(i.stateDir);
        await walk(ctx, i.stateDir, isSecretInStateDir, owner, st);
      }
      if (i.workspace && !i.workspace.startsWith(i.stateDir + "/")) {
        out.roots.push(i.workspace);
        await walk(
          ctx,
          i.workspace,
          (rel, type) => type === "file" && secretName(path.posix.basename(rel)),
          owner,
          st,
        );
      }
      const homes = new Set(
        [svc?.home, userList.find((u) => u.name === i.owner)?.home].filter((h): h is string => !!h),
      );
      for (const h of homes) await single(ctx, `${h}/.config/openclaw/gateway.env`, owner, st);
      // systemd reads EnvironmentFile as root before dropping privileges, so root may own them.
      const envFiles = (i.unit?.directives.EnvironmentFile ?? []).map((v) => v.replace(/^-/, ""));
      for (const f of envFiles)
        if (f.startsWith("/")) await single(ctx, f, { ...owner, rootMayOwn: true }, st);
    }
    return ok(out, out.roots);
  });
}
