import { ok, type Fact } from "../../facts/fact.js";
import { DPKG_STATUS, parseDpkgStatus, type PackagesFact } from "../../facts/packages.js";
import type { FactContext } from "../context.js";
import { gather } from "./guard.js";

export function gatherPackages(ctx: FactContext): Promise<Fact<PackagesFact>> {
  return gather(DPKG_STATUS, async () =>
    ok({ installed: parseDpkgStatus(await ctx.host.readFile(DPKG_STATUS)) }, [DPKG_STATUS]),
  );
}
