/**
 * The fleet's SSH CA as sshd trusts it: principals that name this server, each account its
 * own, root none unless listed; a revocation list, fetched from the shield. Pure.
 */
import { KRL_STALE_AFTER_S, KRL_STATE_FILE, type RevocationFact } from "../facts/krl.js";
import { principalsPerAccount, sshdValue, type SshdFact, type SshdSetting } from "../facts/sshd.js";
import { catalog } from "./catalog.js";
import type { Finding } from "./finding.js";
import { settingEvidence as ev, settingSource as where } from "./sshd-evidence.js";

const C = catalog("ssh", {
  ca_principals: {
    severity: "critical",
    title:
      "A trusted SSH CA lets in only certificates naming this server's own principals, each account its own",
    remediation:
      "clawguard harden --ssh-ca FLEET_CA.pub --agent-id ID --apply   # AuthorizedPrincipalsFile /etc/ssh/clawguard/principals/%u",
    fixable: false,
  },
  ca_revocation: {
    severity: "high",
    title: "A trusted SSH CA comes with a revocation list, so a revoked grant stops working",
    remediation:
      "clawguard harden --ssh-ca FLEET_CA.pub --agent-id ID --apply   # RevokedKeys with the shield's KRL",
    fixable: false,
  },
  krl_fresh: {
    severity: "high",
    title: "The revocation list sshd reads is there, and fetched from the shield within the last 5 minutes",
    remediation:
      "systemctl status clawguard-krl-fetch.service   # the journal says why the fetch failed; to fetch by hand: clawguard ssh-ca fetch-krl --from http://SHIELD_TUNNEL_ADDRESS:3129/ssh/krl",
    fixable: false,
  },
  ca_root: {
    severity: "critical",
    title: "root takes no SSH certificate unless it is listed for one",
    remediation:
      "clawguard harden --ssh-ca FLEET_CA.pub --agent-id ID --apply   # a principals file per account, none for root",
    fixable: false,
  },
});

function value(f: SshdFact, key: string): SshdSetting {
  const s = sshdValue(f, key)!;
  return { ...s, value: s.value.toLowerCase() };
}

/**
 * A CA in TrustedUserCAKeys without AuthorizedPrincipalsFile (or a command) lets in any of its
 * certificates whose principal is the user's name: every server of the fleet, as any user the
 * certificate names. One principals file for every account (no %u in its path) lets a
 * certificate for this server in as any account sshd allows. And without RevokedKeys nothing
 * the shield revokes is refused.
 */
export function checkSshCa(f: SshdFact): Finding[] {
  const ca = value(f, "trustedusercakeys");
  if (ca.value === "none")
    return [
      C.ca_principals.pass(ev(ca, "TrustedUserCAKeys")),
      C.ca_root.pass(ev(ca, "TrustedUserCAKeys")),
      C.ca_revocation.pass(ev(ca, "TrustedUserCAKeys")),
      C.krl_fresh.pass(ev(ca, "TrustedUserCAKeys")),
    ];
  const file = sshdValue(f, "authorizedprincipalsfile")!;
  const command = value(f, "authorizedprincipalscommand");
  const krl = value(f, "revokedkeys");
  return [
    checkPrincipals(f, ca, file, command),
    checkRoot(f, ca, file, command),
    krl.value !== "none"
      ? C.ca_revocation.pass(ev(krl, "RevokedKeys"))
      : C.ca_revocation.fail(
          { source: where(ca), excerpt: `TrustedUserCAKeys ${ca.value}; RevokedKeys none` },
          {
            detail:
              "sshd trusts an SSH CA with no revocation list: a revoked grant still logs in until it expires",
          },
        ),
    f.revocation
      ? checkKrlFresh(f.revocation)
      : C.krl_fresh.skip("no RevokedKeys to keep fresh (see ssh.ca_revocation)", where(krl)),
  ];
}

function checkPrincipals(f: SshdFact, ca: SshdSetting, file: SshdSetting, command: SshdSetting): Finding {
  if (file.value.toLowerCase() !== "none") {
    if (principalsPerAccount(file.value)) return C.ca_principals.pass(ev(file, "AuthorizedPrincipalsFile"));
    return C.ca_principals.warn(ev(file, "AuthorizedPrincipalsFile"), {
      detail: `One principals file (${file.value}) for every account: a certificate for this server logs in as any account sshd lets in, whichever user its grant names`,
    });
  }
  if (command.value !== "none") return C.ca_principals.pass(ev(command, "AuthorizedPrincipalsCommand"));
  return C.ca_principals.fail(
    { source: where(ca), excerpt: `TrustedUserCAKeys ${ca.value}; AuthorizedPrincipalsFile none` },
    {
      detail:
        "sshd trusts an SSH CA with no principals file: any of its certificates naming a user logs in as that user",
    },
  );
}

/**
 * root's certificates: none when root cannot log in or its principals file lists nothing. A
 * file shared by every account fails (any grant for this server opens root); root's own file
 * is reported, since someone listed root on purpose.
 */
function checkRoot(f: SshdFact, ca: SshdSetting, file: SshdSetting, command: SshdSetting): Finding {
  const rootLogin = value(f, "permitrootlogin");
  if (rootLogin.value === "no") return C.ca_root.pass(ev(rootLogin, "PermitRootLogin"));
  if (file.value.toLowerCase() === "none" && command.value === "none")
    return C.ca_root.fail(
      { source: where(ca), excerpt: `TrustedUserCAKeys ${ca.value}; AuthorizedPrincipalsFile none` },
      { detail: "Any certificate of the trusted CA naming the principal root logs in as root" },
    );
  if (file.value.toLowerCase() === "none")
    return C.ca_root.warn(ev(command, "AuthorizedPrincipalsCommand"), {
      detail: `AuthorizedPrincipalsCommand ${command.value} decides which certificates open root; audit cannot tell which`,
    });
  const r = f.rootPrincipals;
  if (!r) return C.ca_root.skip("root's principals file was not read", where(file));
  if (r.problem !== undefined)
    return C.ca_root.warn(
      { source: r.path, excerpt: r.problem },
      { detail: `root's principals file ${r.path} cannot be read: certificates may open root` },
    );
  const excerpt = r.principals.length
    ? `${r.principals.join(", ")}; PermitRootLogin ${rootLogin.value}`
    : `no principals for root; PermitRootLogin ${rootLogin.value}`;
  if (r.principals.length === 0) return C.ca_root.pass({ source: r.path, excerpt });
  if (!principalsPerAccount(file.value))
    return C.ca_root.fail(
      { source: r.path, excerpt },
      {
        detail: `root reads the principals file every account reads (${r.path}): every certificate for this server logs in as root`,
      },
    );
  return C.ca_root.warn(
    { source: r.path, excerpt },
    { detail: `root takes certificates naming ${r.principals.join(", ")} (${r.path})` },
  );
}

function ago(s: number): string {
  return s < 120
    ? `${s} s ago`
    : s < 7200
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 3600)} h ago`;
}

/**
 * The list must be there (a RevokedKeys file sshd cannot read refuses every key) and recent: a
 * revocation reaches this server only with a newer list, so an old one lets revoked grants in.
 */
function checkKrlFresh(r: RevocationFact): Finding {
  if (r.bytes === null)
    return C.krl_fresh.fail(
      { source: r.path, excerpt: "named by RevokedKeys, and missing" },
      {
        detail: `RevokedKeys names ${r.path}, which is missing: sshd refuses every public key, admin keys too`,
        severity: "critical",
      },
    );
  const fetch = r.fetch;
  if (fetch === null)
    return C.krl_fresh.warn(
      { source: KRL_STATE_FILE, excerpt: `no record of a fetch; ${r.path} holds ${r.bytes} bytes` },
      {
        detail:
          "The revocation list is not fetched from the shield: a revoked grant is refused here only once someone copies the list",
        remediation:
          "clawguard harden --ssh-ca FLEET_CA.pub --agent-id ID --krl-from http://SHIELD_TUNNEL_ADDRESS:3129/ssh/krl --apply",
      },
    );
  const last = fetch.lastSuccess !== null ? new Date(fetch.lastSuccess).toISOString() : null;
  const failing = fetch.error !== null ? `; the last attempt failed: ${fetch.error}` : "";
  if (r.sinceSuccessS === null || last === null)
    return C.krl_fresh.fail(
      { source: KRL_STATE_FILE, excerpt: `never fetched from ${fetch.url}${failing}` },
      {
        detail: `The revocation list was never fetched from the shield (${fetch.url}): this server keeps the list it had`,
      },
    );
  const excerpt = `last fetched from ${fetch.url} at ${last} (${ago(r.sinceSuccessS)}), version ${fetch.version ?? "?"}${failing}`;
  if (r.sinceSuccessS > KRL_STALE_AFTER_S)
    return C.krl_fresh.fail(
      { source: KRL_STATE_FILE, excerpt },
      {
        detail: `The revocation list was last fetched at ${last}, ${ago(r.sinceSuccessS)}: grants revoked since then still log in here`,
      },
    );
  return C.krl_fresh.pass({ source: KRL_STATE_FILE, excerpt });
}
