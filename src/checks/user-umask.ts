import type { Facts } from "../facts/keys.js";
import { LOGIN_DEFS } from "../facts/login-defs.js";
import { entry } from "../facts/record.js";
import { catalog, need } from "./catalog.js";
import type { Finding } from "./finding.js";

/** Umasks that leave nothing readable by other users. */
const PRIVATE = /^0?0[27]7$/;

const C = catalog("user", {
  home_umask: {
    severity: "low",
    title: "Accounts created from now on get a home other users cannot read (login.defs UMASK 027)",
    remediation: `sed -i 's/^UMASK.*/UMASK\\t\\t027/' ${LOGIN_DEFS}`,
    fixable: true,
  },
});

/**
 * useradd gives a new home the mode its UMASK leaves (Debian's 022 leaves 755), and an agent's
 * state lives in its home: a second agent or service account on the server could read the
 * first one's tokens. pam_umask, where enabled, applies the same value to login sessions.
 */
export function checkHomeUmask({ loginDefs }: Pick<Facts, "loginDefs">): Finding[] {
  const out: Finding[] = [];
  const f = need(loginDefs, C.home_umask, out);
  if (!f) return out;
  const umask = entry(f.values, "UMASK");
  const home = entry(f.values, "HOME_MODE");
  if (home)
    out.push(
      C.home_umask.verdict(
        /^0?[0-7][0-7]0$/.test(home.value),
        { source: `${LOGIN_DEFS} line ${home.line}`, excerpt: `HOME_MODE ${home.value}` },
        { remediation: `sed -i 's/^HOME_MODE.*/HOME_MODE\\t0750/' ${LOGIN_DEFS}` },
      ),
    );
  else if (umask)
    out.push(
      C.home_umask.verdict(PRIVATE.test(umask.value), {
        source: `${LOGIN_DEFS} line ${umask.line}`,
        excerpt: `UMASK ${umask.value}, no HOME_MODE`,
      }),
    );
  else
    out.push(
      C.home_umask.fail(
        { source: LOGIN_DEFS, excerpt: "neither UMASK nor HOME_MODE: useradd uses 022" },
        { remediation: `echo 'UMASK 027' >> ${LOGIN_DEFS}` },
      ),
    );
  return out;
}
