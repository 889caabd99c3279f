import { LOGIN_NOTICE } from "../checks/ssh-banner.js";
import type { Change } from "../change/change.js";
import { ISSUE, ISSUE_NET, noticeProblem } from "../facts/banners.js";
import { entry } from "../facts/record.js";
import { sshdValue } from "../facts/sshd.js";
import { SSHD_DROP_IN } from "../render/sshd.js";
import type { PlanFacts } from "./facts.js";

const root = { owner: "root", group: "root" };

/**
 * The file sshd's Banner should name, and the notices to write. A banner the operator set
 * elsewhere that already says what it should is kept; otherwise /etc/issue.net is, and it and
 * the console's /etc/issue get the notice when theirs falls short (rollback puts them back).
 */
export function planLoginNotices(
  facts: Pick<PlanFacts, "sshd" | "banners">,
  fixes: string[],
): { bannerPath: string; changes: Change[] } {
  const texts = facts.banners.status === "ok" ? facts.banners.value.texts : undefined;
  const current = facts.sshd.status === "ok" ? sshdValue(facts.sshd.value, "banner") : undefined;
  const theirs =
    current &&
    current.value.toLowerCase() !== "none" &&
    current.source !== SSHD_DROP_IN &&
    texts &&
    noticeProblem(entry(texts, current.value)) === undefined
      ? current.value
      : undefined;
  const bannerPath = theirs ?? ISSUE_NET;
  // Without the files' text nothing is known to fall short, and nothing is overwritten.
  if (!texts || !fixes.length) return { bannerPath, changes: [] };
  const changes: Change[] = [];
  for (const path of theirs ? [ISSUE] : [ISSUE, ISSUE_NET])
    if (noticeProblem(entry(texts, path)) !== undefined)
      changes.push({ kind: "file", path, content: LOGIN_NOTICE, mode: 0o644, ...root, fixes });
  return { bannerPath, changes };
}
