import { ok, skipped, type Fact } from "../../facts/fact.js";
import { parseRouteV4, parseRouteV6, type RoutesFact } from "../../facts/routes.js";
import type { FactContext } from "../context.js";
import { isMissing } from "../errors.js";
import { gather } from "./guard.js";

const V4 = "/proc/net/route";
const V6 = "/proc/net/ipv6_route";

/** The kernel's default routes; a mounted image has no kernel, and so none. */
export function gatherRoutes(ctx: FactContext): Promise<Fact<RoutesFact>> {
  return gather(V4, async () => {
    let v4: string;
    try {
      v4 = await ctx.host.readFile(V4);
    } catch (err) {
      if (isMissing(err)) return skipped("not a running system: it has no kernel route table");
      throw err;
    }
    // A kernel without IPv6 has no table for it.
    const v6 = await ctx.host.readFile(V6).catch((err: unknown) => {
      if (isMissing(err)) return "";
      throw err;
    });
    return ok({ defaults: [...parseRouteV4(v4), ...parseRouteV6(v6)] }, [V4, V6]);
  });
}
