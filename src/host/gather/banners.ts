import { ISSUE, ISSUE_NET, type BannersFact } from "../../facts/banners.js";
import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { table } from "../../facts/record.js";
import { sshdValue } from "../../facts/sshd.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

/** /etc/issue, /etc/issue.net, and the file sshd's Banner names when it is another. */
export function gatherBanners(ctx: FactContext): Promise<Fact<BannersFact>> {
  return gather(ISSUE, async () => {
    const paths = [ISSUE, ISSUE_NET];
    const sshd = await ctx.get("sshd");
    const banner = sshd.status === "ok" ? sshdValue(sshd.value, "banner")?.value : undefined;
    if (banner?.startsWith("/") && !paths.includes(banner)) paths.push(banner);
    const texts = table<string | null>();
    const problems: Problem[] = [];
    const read: string[] = [];
    for (const p of paths) {
      try {
        texts[p] = await ctx.host.readFile(p);
        read.push(p);
      } catch (err) {
        if (isMissing(err)) texts[p] = null;
        else problems.push(toProblem(p, err));
      }
    }
    return ok({ texts }, read, problems);
  });
}
