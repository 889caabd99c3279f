import { ISSUE, ISSUE_NET, noticeProblem } from "../facts/banners.js";
import type { Facts } from "../facts/keys.js";
import { entry } from "../facts/record.js";
import { sshdValue } from "../facts/sshd.js";
import { catalog, need, partialProblems } from "./catalog.js";
import type { Finding } from "./finding.js";

/** The notice harden writes: what a login notice conventionally says, and nothing about the system. */
export const LOGIN_NOTICE = [
  "Authorized access only. This system is private; its use is monitored and recorded,",
  "and evidence of unauthorized access may be disclosed to law enforcement.",
  "Disconnect now if you are not an authorized user.",
  "",
].join("\n");

const SSHD_DROP_IN = "/etc/ssh/sshd_config.d/50-clawguard.conf";

const C = catalog("ssh", {
  banner: {
    severity: "low",
    title:
      "Logins over SSH and on the console are told access is for authorized users only, and not which OS runs",
    remediation:
      `printf '%s\\n' 'Authorized access only. Use is monitored and recorded.' | tee ${ISSUE} > ${ISSUE_NET}; ` +
      `echo 'Banner ${ISSUE_NET}' >> ${SSHD_DROP_IN} && sshd -t && systemctl reload ssh`,
    fixable: true,
  },
});

/**
 * The notice sshd shows before authentication (its Banner) and the console's /etc/issue, which
 * the provider's web console shows. Both warn off whoever is not authorized, and neither tells a
 * scanner the distribution and release to pick exploits for.
 */
export function checkSshBanner({ sshd, banners }: Pick<Facts, "sshd" | "banners">): Finding[] {
  // sshd missing or unreadable is reported once, for the layer, under ssh.root_login.
  if (sshd.status !== "ok") return [];
  const s = sshd.value;
  const out: Finding[] = [];
  const b = need(banners, C.banner, out);
  if (!b) return out;
  out.push(...partialProblems(banners, C.banner));
  const banner = sshdValue(s, "banner")!;
  const bad: string[] = [];
  const good: string[] = [];
  const judge = (path: string, label: string) => {
    const why = noticeProblem(entry(b.texts, path));
    (why ? bad : good).push(`${label} ${path}${why ? `: ${why}` : ""}`);
  };
  if (banner.value.toLowerCase() === "none")
    bad.push(
      `sshd shows no notice (Banner none, ${banner.source === "default" ? "OpenSSH default" : banner.source})`,
    );
  else judge(banner.value, "sshd Banner");
  judge(ISSUE, "console");
  const source = banner.value.toLowerCase() === "none" ? ISSUE : `${banner.value}, ${ISSUE}`;
  out.push(
    bad.length === 0
      ? C.banner.pass({ source, excerpt: good.join("; ") })
      : C.banner.fail({ source, excerpt: bad.join("; ") }),
  );
  return out;
}
