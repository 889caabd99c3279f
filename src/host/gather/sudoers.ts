import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { expandAliases, parseSudoers, type SudoersFact, type SudoRule } from "../../facts/sudoers.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

const SUDOERS = "/etc/sudoers";

/** sudo skips files in an includedir whose names end in `~` or contain a `.`. */
function sudoReadsPart(name: string): boolean {
  return !name.endsWith("~") && !name.includes(".");
}

export function gatherSudoers(ctx: FactContext): Promise<Fact<SudoersFact>> {
  return gather(SUDOERS, async () => {
    const rules: SudoRule[] = [];
    const aliases = new Map<string, string[]>();
    const problems: Problem[] = [];
    const files: string[] = [];
    const seen = new Set<string>();
    const read = async (p: string, required: boolean): Promise<void> => {
      if (seen.has(p) || seen.size > 64) return;
      seen.add(p);
      let text: string;
      try {
        text = await ctx.host.readFile(p);
      } catch (err) {
        if (required) throw err;
        problems.push(toProblem(p, err));
        return;
      }
      files.push(p);
      const parsed = parseSudoers(text, p);
      for (const [k, v] of parsed.aliases) aliases.set(k, v);
      rules.push(...parsed.rules);
      for (const inc of parsed.includes) {
        const target = inc.path.startsWith("/") ? inc.path : `/etc/${inc.path}`;
        if (!inc.dir) {
          await read(target, false);
          continue;
        }
        try {
          const names = (await ctx.host.readDir(target))
            .filter((e) => e.type !== "dir" && sudoReadsPart(e.name))
            .map((e) => e.name);
          for (const n of names) await read(`${target}/${n}`, false);
        } catch (err) {
          if (!isMissing(err)) problems.push(toProblem(target, err));
        }
      }
    };
    try {
      await read(SUDOERS, true);
    } catch (err) {
      // No sudo installed means nobody has sudo rights.
      if (isMissing(err)) return ok({ rules: [], files: [] }, [], problems);
      throw err;
    }
    for (const r of rules) r.who = expandAliases(r.who, aliases);
    return ok({ rules, files }, files, problems);
  });
}
