import { stat } from "node:fs/promises";
import { ClawguardError } from "../errors.js";
import { LocalHost } from "../host/host.js";

/**
 * The system at `--root`. A root that is not a directory is refused: every file would read as
 * missing, and an audit of nothing reports findings that are not there and misses those that are.
 */
export async function hostAt(root: string): Promise<LocalHost> {
  const st = await stat(root).catch(() => null);
  if (!st?.isDirectory())
    throw new ClawguardError("CG_ROOT_MISSING", st ? "--root is not a directory" : "--root does not exist", {
      where: root,
      hint: "mount the system there, or leave --root out to work on this one",
    });
  return new LocalHost(root);
}
