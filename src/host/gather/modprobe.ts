import { dropInOrder } from "../../facts/dropins.js";
import { ok, type Fact, type Problem } from "../../facts/fact.js";
import {
  MODPROBE_DIRS,
  parseModprobeConf,
  type ModprobeFact,
  type ModprobeRule,
} from "../../facts/modprobe.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { listDropInDirs } from "./dropins.js";
import { gather } from "./guard.js";

export function gatherModprobe(ctx: FactContext): Promise<Fact<ModprobeFact>> {
  return gather(MODPROBE_DIRS[0]!, async () => {
    const problems: Problem[] = [];
    const files: string[] = [];
    const rules: ModprobeRule[] = [];
    const listing = await listDropInDirs(ctx, MODPROBE_DIRS, problems);
    for (const p of dropInOrder(MODPROBE_DIRS, listing)) {
      try {
        rules.push(...parseModprobeConf(await ctx.host.readFile(p), p));
        files.push(p);
      } catch (err) {
        if (!isMissing(err)) problems.push(toProblem(p, err));
      }
    }
    return ok({ files, rules }, files, problems);
  });
}
