import { ok, skipped, type Fact } from "../../facts/fact.js";
import { LOGIN_DEFS, parseLoginDefs, type LoginDefsFact } from "../../facts/login-defs.js";
import type { FactContext } from "../context.js";
import { isMissing } from "../errors.js";
import { gather } from "./guard.js";

export function gatherLoginDefs(ctx: FactContext): Promise<Fact<LoginDefsFact>> {
  return gather(LOGIN_DEFS, async () => {
    try {
      return ok(parseLoginDefs(await ctx.host.readFile(LOGIN_DEFS)), [LOGIN_DEFS]);
    } catch (err) {
      if (isMissing(err)) return skipped(`no ${LOGIN_DEFS}: shadow's useradd is not installed`);
      throw err;
    }
  });
}
