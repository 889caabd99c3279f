import {
  OS_RELEASE,
  parseDeb822Sources,
  parseOneLineSources,
  parseOsRelease,
  SOURCES_DIR,
  SOURCES_LIST,
  type AptSource,
  type AptSourcesFact,
  type OsRelease,
} from "../../facts/apt-sources.js";
import { ok, type Fact, type Problem } from "../../facts/fact.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

/** apt's own rule for the parts of sources.list.d it reads; others (`.save`, `.disabled`) it ignores. */
function aptReadsSourcesPart(name: string): boolean {
  return /^[A-Za-z0-9_.-]+\.(list|sources)$/.test(name);
}

export function gatherAptSources(ctx: FactContext): Promise<Fact<AptSourcesFact>> {
  return gather(SOURCES_LIST, async () => {
    const problems: Problem[] = [];
    const sources: AptSource[] = [];
    const files: string[] = [];
    let parts: string[] = [];
    try {
      parts = (await ctx.host.readDir(SOURCES_DIR))
        .filter((e) => e.type !== "dir" && aptReadsSourcesPart(e.name))
        .map((e) => `${SOURCES_DIR}/${e.name}`)
        .sort();
    } catch (err) {
      if (!isMissing(err)) problems.push(toProblem(SOURCES_DIR, err));
    }
    for (const p of [SOURCES_LIST, ...parts]) {
      try {
        const text = await ctx.host.readFile(p);
        sources.push(
          ...(p.endsWith(".sources") ? parseDeb822Sources(text, p) : parseOneLineSources(text, p)),
        );
        files.push(p);
      } catch (err) {
        if (p === SOURCES_LIST && isMissing(err)) continue;
        problems.push(toProblem(p, err));
      }
    }
    let release: OsRelease | undefined;
    for (const p of [OS_RELEASE, "/usr/lib/os-release"]) {
      try {
        release = parseOsRelease(await ctx.host.readFile(p));
        break;
      } catch (err) {
        if (!isMissing(err)) problems.push(toProblem(p, err));
      }
    }
    return ok({ sources, files, release }, [...files, OS_RELEASE], problems);
  });
}
