import { readdir, stat } from "node:fs/promises";
import { ClawguardError, UsageError } from "../errors.js";
import { LocalHost } from "../host/host.js";

/**
 * Refuse a `--root` that holds no system: missing, not a directory, or empty. Every file would
 * read as missing, so an audit of it reports findings that are not there and misses those that
 * are, a plan says "nothing to change", and an install writes a tree nobody meant.
 */
export async function checkRoot(root: string): Promise<void> {
  const st = await stat(root).catch(() => null);
  const problem = !st
    ? "--root does not exist"
    : !st.isDirectory()
      ? "--root is not a directory"
      : (await readdir(root)).length === 0
        ? "--root is an empty directory"
        : null;
  if (problem)
    throw new ClawguardError("CG_ROOT_MISSING", problem, {
      where: root,
      hint: "mount the system there, or leave --root out to work on this one",
    });
}

/** A `--state-dir` that exists must be a directory: a file there holds no runs to list or undo. */
export async function checkStateDir(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (st && !st.isDirectory())
    throw new UsageError("--state-dir is not a directory", {
      where: dir,
      hint: "give the directory harden keeps its runs in (by default ROOT/var/lib/clawguard)",
    });
}

/** The system at `--root`, once it is known to hold one. */
export async function hostAt(root: string): Promise<LocalHost> {
  await checkRoot(root);
  return new LocalHost(root);
}
