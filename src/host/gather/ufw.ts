import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { table } from "../../facts/record.js";
import {
  parseShellSettings,
  parseUfwRules,
  UFW_CONF,
  UFW_DEFAULTS,
  UFW_USER6_RULES,
  UFW_USER_RULES,
  type UfwFact,
} from "../../facts/ufw.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

async function readOptional<T>(
  problems: Problem[],
  sources: string[],
  path: string,
  read: () => Promise<T>,
): Promise<T | undefined> {
  try {
    const v = await read();
    sources.push(path);
    return v;
  } catch (err) {
    if (isMissing(err)) return undefined;
    problems.push(toProblem(path, err));
    return undefined;
  }
}

/** ufw's saved state; each file that cannot be read or parsed is a problem naming it. */
export function gatherUfw(ctx: FactContext): Promise<Fact<UfwFact>> {
  return gather(UFW_CONF, async () => {
    const problems: Problem[] = [];
    const sources: string[] = [];
    const h = ctx.host;
    const [conf, defaults, v4, v6] = await Promise.all([
      readOptional(problems, sources, UFW_CONF, async () =>
        parseShellSettings(await h.readFile(UFW_CONF), UFW_CONF),
      ),
      readOptional(problems, sources, UFW_DEFAULTS, async () =>
        parseShellSettings(await h.readFile(UFW_DEFAULTS), UFW_DEFAULTS),
      ),
      readOptional(problems, sources, UFW_USER_RULES, async () =>
        parseUfwRules(await h.readBytes(UFW_USER_RULES), UFW_USER_RULES, 4),
      ),
      readOptional(problems, sources, UFW_USER6_RULES, async () =>
        parseUfwRules(await h.readBytes(UFW_USER6_RULES), UFW_USER6_RULES, 6),
      ),
    ]);
    return ok({ conf: conf ?? table(), defaults: defaults ?? table(), v4, v6 }, sources, problems);
  });
}
