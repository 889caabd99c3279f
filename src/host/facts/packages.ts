import type { FactContext } from "../context.js";
import { gather, ok, type Fact } from "../fact.js";

export interface PackagesFact {
  /** Installed packages (dpkg status "install ok installed"), name -> version. */
  installed: Map<string, string>;
}

const STATUS = "/var/lib/dpkg/status";

export function parseDpkgStatus(text: string): Map<string, string> {
  const installed = new Map<string, string>();
  for (const para of text.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)/m.exec(para)?.[1];
    const status = /^Status:\s*(.+)$/m.exec(para)?.[1]?.trim();
    const version = /^Version:\s*(\S+)/m.exec(para)?.[1] ?? "";
    if (name && status === "install ok installed") installed.set(name, version);
  }
  return installed;
}

export function gatherPackages(ctx: FactContext): Promise<Fact<PackagesFact>> {
  return gather(STATUS, async () =>
    ok({ installed: parseDpkgStatus(await ctx.host.readFile(STATUS)) }, [STATUS]),
  );
}
