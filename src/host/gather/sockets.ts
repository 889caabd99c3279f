import { MalformedError, ok, type Fact, type Problem } from "../../facts/fact.js";
import { parseProcNetTcp, type Listener } from "../../facts/sockets.js";
import type { FactContext } from "../context.js";
import { HostError } from "../errors.js";
import { gather } from "./guard.js";

/** Live TCP listeners of the audited system's network namespace. */
export function gatherListeners(ctx: FactContext): Promise<Fact<Listener[]>> {
  return gather("/proc/net/tcp", async () => {
    const listeners: Listener[] = [];
    const problems: Problem[] = [];
    const sources: string[] = [];
    for (const [path, family] of [
      ["/proc/net/tcp", 4],
      ["/proc/net/tcp6", 6],
    ] as const) {
      try {
        listeners.push(...parseProcNetTcp(await ctx.host.readFile(path), family, path));
        sources.push(path);
      } catch (err) {
        if (err instanceof MalformedError)
          problems.push({ kind: "malformed", source: path, message: err.message, line: err.line });
        else if (err instanceof HostError) problems.push(err.problem);
        else throw err;
      }
    }
    if (sources.length === 0) return { status: "error", problems };
    // A kernel without IPv6 has no tcp6: that is not a problem worth reporting.
    return ok(
      listeners,
      sources,
      problems.filter((p) => !(p.kind === "missing" && p.source.endsWith("tcp6"))),
    );
  });
}
