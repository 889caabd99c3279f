import { MalformedError, ok, type Fact, type Problem } from "../../facts/fact.js";
import { parseGroup, parsePasswd, type GroupEntry, type UsersFact } from "../../facts/users.js";
import type { FactContext } from "../context.js";
import { HostError } from "../errors.js";
import { gather } from "./guard.js";

export function gatherUsers(ctx: FactContext): Promise<Fact<UsersFact>> {
  return gather("/etc/passwd", async () => {
    const users = parsePasswd(await ctx.host.readFile("/etc/passwd"));
    const problems: Problem[] = [];
    let groups: GroupEntry[] = [];
    try {
      groups = parseGroup(await ctx.host.readFile("/etc/group"));
    } catch (err) {
      if (!(err instanceof HostError) && !(err instanceof MalformedError)) throw err;
      problems.push(
        err instanceof HostError
          ? err.problem
          : { kind: "malformed", source: "/etc/group", message: err.message, line: err.line },
      );
    }
    return ok({ users, groups }, ["/etc/passwd", "/etc/group"], problems);
  });
}
