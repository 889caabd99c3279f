import { ok, type Fact } from "../../facts/fact.js";
import type { PathStats } from "../../facts/stat.js";
import type { FactContext } from "../context.js";
import { toProblem } from "../errors.js";
import { gather } from "./guard.js";

/** Owner and mode of every install's state dir and of its user's home. */
export function gatherServicePaths(ctx: FactContext): Promise<Fact<PathStats>> {
  return gather("/etc/passwd", async () => {
    const [openclaw, users] = await Promise.all([ctx.get("openclaw"), ctx.get("users")]);
    const res: PathStats = { stats: {}, problems: [] };
    if (openclaw.status !== "ok" || users.status !== "ok") return ok(res, []);
    const wanted = new Set<string>();
    for (const i of openclaw.value.installs) {
      wanted.add(i.stateDir);
      const home = users.value.users.find((x) => x.name === i.runsAs)?.home;
      if (home) wanted.add(home);
    }
    await Promise.all(
      [...wanted].map(async (p) => {
        try {
          res.stats[p] = await ctx.host.stat(p);
        } catch (err) {
          res.problems.push(toProblem(p, err));
        }
      }),
    );
    return ok(res, [...wanted]);
  });
}
