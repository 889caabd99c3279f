import { table } from "../../facts/record.js";
import type { Problem } from "../../facts/fact.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";

/** The file names in each directory (a missing one lists nothing), for dropInOrder. */
export async function listDropInDirs(
  ctx: FactContext,
  dirs: readonly string[],
  problems: Problem[],
): Promise<Record<string, string[]>> {
  const listing = table<string[]>();
  for (const dir of dirs) {
    try {
      listing[dir] = (await ctx.host.readDir(dir)).filter((e) => e.type !== "dir").map((e) => e.name);
    } catch (err) {
      if (!isMissing(err)) problems.push(toProblem(dir, err));
    }
  }
  return listing;
}
