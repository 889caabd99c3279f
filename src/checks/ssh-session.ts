import { sshdSeconds, sshdValue, type SshdFact, type SshdSetting } from "../facts/sshd.js";
import { entry } from "../facts/record.js";
import { catalog } from "./catalog.js";
import type { Finding } from "./finding.js";
import { settingEvidence as ev, settingSource as where } from "./sshd-evidence.js";

/** What harden writes, and the bar the checks hold sshd to. */
export const SSHD_LIMITS = {
  maxAuthTries: 3,
  loginGraceTime: 60,
  clientAliveInterval: 300,
  clientAliveCountMax: 2,
} as const;

const DROP_IN = "/etc/ssh/sshd_config.d/50-clawguard.conf";
const RELOAD = "sshd -t && systemctl reload ssh";

const C = catalog("ssh", {
  max_auth_tries: {
    severity: "medium",
    title: `SSH drops a connection after ${SSHD_LIMITS.maxAuthTries} failed authentication attempts`,
    remediation: `echo 'MaxAuthTries ${SSHD_LIMITS.maxAuthTries}' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  login_grace_time: {
    severity: "low",
    title: `SSH gives an unauthenticated connection at most ${SSHD_LIMITS.loginGraceTime} s to log in`,
    remediation: `echo 'LoginGraceTime ${SSHD_LIMITS.loginGraceTime}' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  client_alive: {
    severity: "low",
    title: "SSH closes sessions whose client went away, probing through the encrypted channel",
    remediation: `printf 'ClientAliveInterval ${SSHD_LIMITS.clientAliveInterval}\\nClientAliveCountMax ${SSHD_LIMITS.clientAliveCountMax}\\nTCPKeepAlive no\\n' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  log_level: {
    severity: "medium",
    title: "SSH logs at VERBOSE, so the log (and fail2ban) sees which key logged in",
    remediation: `echo 'LogLevel VERBOSE' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  compression: {
    severity: "low",
    title: "SSH compression is off (zlib is attack surface, and a VPS's link does not need it)",
    remediation: `echo 'Compression no' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  allow_users: {
    severity: "low",
    title: "SSH lets in only the accounts that are meant to log in (AllowUsers or AllowGroups)",
    remediation: `echo 'AllowUsers USER...' >> ${DROP_IN} && ${RELOAD}   # every account you log in as`,
    fixable: true,
  },
});

function numeric(f: SshdFact, key: string): { s: SshdSetting; n: number | undefined } {
  const s = sshdValue(f, key)!;
  return { s, n: sshdSeconds(s.value) };
}

/**
 * The accounts that may be put in AllowUsers without locking anyone out: every login user with
 * a readable key, and only when that is the whole story. Keys from elsewhere (a CA, a command)
 * or key files that could not be read mean the set is not known; passwords still on mean
 * accounts without a key log in too.
 */
export function knownLoginUsers(f: SshdFact): { users: string[] } | { why: string } {
  const cmd = sshdValue(f, "authorizedkeyscommand")!.value;
  const ca = sshdValue(f, "trustedusercakeys")!.value;
  if (cmd.toLowerCase() !== "none")
    return { why: `AuthorizedKeysCommand ${cmd} can let in accounts without a key file` };
  if (ca.toLowerCase() !== "none")
    return { why: `TrustedUserCAKeys ${ca} lets in certificates for any account` };
  if (f.keysProblems.length > 0 || f.keysUnknown.length > 0)
    return { why: "some authorized_keys files could not be read" };
  const users = [...new Set(f.authorizedKeys.map((k) => k.user))];
  if (users.length === 0) return { why: "no account has an authorized_keys file" };
  const pw = sshdValue(f, "passwordauthentication")!.value.toLowerCase();
  if (pw === "yes") return { why: "passwords are still accepted, so accounts without a key may log in" };
  return { users };
}

export function checkSshSession(f: SshdFact): Finding[] {
  const out: Finding[] = [];
  const tries = numeric(f, "maxauthtries");
  out.push(
    C.max_auth_tries.verdict(
      tries.n !== undefined && tries.n <= SSHD_LIMITS.maxAuthTries,
      ev(tries.s, "MaxAuthTries"),
    ),
  );
  const grace = numeric(f, "logingracetime");
  out.push(
    C.login_grace_time.verdict(
      grace.n !== undefined && grace.n > 0 && grace.n <= SSHD_LIMITS.loginGraceTime,
      ev(grace.s, "LoginGraceTime"),
      grace.n === 0
        ? { detail: "LoginGraceTime 0: an unauthenticated connection may wait forever" }
        : undefined,
    ),
  );
  const interval = numeric(f, "clientaliveinterval");
  const count = numeric(f, "clientalivecountmax");
  const keepalive = sshdValue(f, "tcpkeepalive")!;
  const alive =
    interval.n !== undefined &&
    interval.n > 0 &&
    interval.n <= SSHD_LIMITS.clientAliveInterval &&
    count.n !== undefined &&
    count.n > 0 &&
    count.n <= SSHD_LIMITS.clientAliveCountMax;
  out.push(
    C.client_alive.verdict(
      alive,
      {
        source: where(interval.s),
        excerpt: `ClientAliveInterval ${interval.s.value}, ClientAliveCountMax ${count.s.value} (${where(count.s)}), TCPKeepAlive ${keepalive.value}`,
      },
      alive
        ? undefined
        : { detail: "SSH keeps sessions of vanished clients open (ClientAliveInterval off or long)" },
    ),
  );
  const level = sshdValue(f, "loglevel")!;
  out.push(C.log_level.verdict(level.value.toUpperCase() === "VERBOSE", ev(level, "LogLevel")));
  const compression = sshdValue(f, "compression")!;
  out.push(C.compression.verdict(compression.value.toLowerCase() === "no", ev(compression, "Compression")));
  out.push(allowUsers(f));
  return out;
}

function allowUsers(f: SshdFact): Finding {
  const set = [...(entry(f.settings, "allowusers") ?? []), ...(entry(f.settings, "allowgroups") ?? [])];
  if (set.length > 0)
    return C.allow_users.pass({
      source: where(set[0]!),
      excerpt: set.map((s) => `${s.value} (${where(s)})`).join("; "),
    });
  const known = knownLoginUsers(f);
  if ("users" in known)
    return C.allow_users.warn(
      {
        source: f.authorizedKeys[0]!.path,
        excerpt: `no AllowUsers or AllowGroups; accounts with keys: ${known.users.join(", ")}`,
      },
      { remediation: `echo 'AllowUsers ${known.users.join(" ")}' >> ${DROP_IN} && ${RELOAD}` },
    );
  return C.allow_users.warn(
    {
      source: f.files[0] ?? "sshd -T",
      excerpt: `no AllowUsers or AllowGroups, and harden will not guess them: ${known.why}`,
    },
    { detail: "Any account can try to log in over SSH (harden leaves AllowUsers to you)" },
  );
}
