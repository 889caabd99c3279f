import { parseAptConf, type AptConfFact, type AptConfig } from "../../facts/aptconf.js";
import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { table } from "../../facts/record.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

const APT_CONF = "/etc/apt/apt.conf";
const APT_CONF_D = "/etc/apt/apt.conf.d";

/** apt's own rule for which parts it reads: letters, digits, `_`, `-`, `.` and optional `.conf`. */
function aptReadsPart(name: string): boolean {
  return /^[A-Za-z0-9_.-]+$/.test(name) && !/\.(disabled|dpkg-[a-z]+|ucf-[a-z]+|bak|save|orig)$/.test(name);
}

export function gatherAptConf(ctx: FactContext): Promise<Fact<AptConfFact>> {
  return gather(APT_CONF_D, async () => {
    const config: AptConfig = table();
    const problems: Problem[] = [];
    const files: string[] = [];
    let parts: string[] = [];
    try {
      parts = (await ctx.host.readDir(APT_CONF_D))
        .filter((e) => e.type !== "dir" && aptReadsPart(e.name))
        .map((e) => e.name);
    } catch (err) {
      if (!isMissing(err)) problems.push(toProblem(APT_CONF_D, err));
    }
    // apt reads the parts in order, then apt.conf last.
    for (const p of [...parts.sort().map((n) => `${APT_CONF_D}/${n}`), APT_CONF]) {
      try {
        parseAptConf(await ctx.host.readFile(p), p, config);
        files.push(p);
      } catch (err) {
        if (p === APT_CONF && isMissing(err)) continue;
        problems.push(toProblem(p, err));
      }
    }
    return ok({ config, files }, files, problems);
  });
}
