import type { Facts } from "../facts/keys.js";
import { sshdValue, type SshdFact, type SshdSetting } from "../facts/sshd.js";
import { catalog, need, partialProblems, type FindingMaker } from "./catalog.js";
import type { Finding } from "./finding.js";
import { settingEvidence as ev, settingSource as where } from "./sshd-evidence.js";
import { defineLayer } from "./layer.js";
import { checkSshBanner } from "./ssh-banner.js";
import { checkSshCa } from "./ssh-ca.js";
import { checkSshSession } from "./ssh-session.js";

const DROP_IN = "/etc/ssh/sshd_config.d/10-clawguard.conf";
const RELOAD = "sshd -t && systemctl reload ssh";

const C = catalog("ssh", {
  root_login: {
    severity: "critical",
    title: "root cannot log in over SSH with a password",
    remediation: `echo 'PermitRootLogin prohibit-password' > ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  password_auth: {
    severity: "high",
    title: "SSH accepts keys only, no passwords",
    remediation: `printf 'PasswordAuthentication no\\nKbdInteractiveAuthentication no\\n' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  empty_passwords: {
    severity: "critical",
    title: "SSH refuses accounts with empty passwords",
    remediation: `echo 'PermitEmptyPasswords no' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  tcp_forwarding: {
    severity: "medium",
    title: "SSH allows local forwarding only (ssh -L to the gateway still works, no -R tunnels in)",
    remediation: `echo 'AllowTcpForwarding local' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  agent_forwarding: {
    severity: "low",
    title: "SSH agent forwarding is off (a compromised server cannot use your agent)",
    remediation: `echo 'AllowAgentForwarding no' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  x11_forwarding: {
    severity: "medium",
    title: "X11 forwarding is off",
    remediation: `echo 'X11Forwarding no' >> ${DROP_IN} && ${RELOAD}`,
    fixable: true,
  },
  match_overrides: {
    severity: "medium",
    title: "No Match block loosens root login, passwords or forwarding for some connections",
    remediation: "remove the loosening settings from the Match block named in the evidence, then " + RELOAD,
    fixable: false,
  },
  ports: {
    severity: "info",
    title: "sshd listens where its configuration says",
    remediation: "systemctl restart ssh   # the running sshd still uses its old ports",
    fixable: false,
  },
  authorized_keys: {
    severity: "high",
    title: "Some login user has an SSH key, so passwords can be turned off without a lockout",
    remediation:
      "from your own machine: ssh-copy-id -i ~/.ssh/id_ed25519.pub USER@SERVER, then check that `ssh USER@SERVER` logs in without a password",
    fixable: false,
  },
});

const LOOSE: Record<string, (v: string) => boolean> = {
  permitrootlogin: (v) => v === "yes",
  passwordauthentication: (v) => v === "yes",
  kbdinteractiveauthentication: (v) => v === "yes",
  permitemptypasswords: (v) => v === "yes",
  allowtcpforwarding: (v) => v === "yes" || v === "all" || v === "remote",
  allowagentforwarding: (v) => v === "yes",
  x11forwarding: (v) => v === "yes",
};

function value(f: SshdFact, key: string): SshdSetting {
  const s = sshdValue(f, key)!;
  return { ...s, value: s.value.toLowerCase() };
}

function keysSummary(f: SshdFact): string {
  if (f.authorizedKeys.length > 0)
    return f.authorizedKeys.map((k) => `${k.user}: ${k.keys} key(s) in ${k.path}`).join("; ");
  return `no authorized_keys for ${f.keyUsers.join(", ") || "any login user"}`;
}

function checkPasswords(f: SshdFact): Finding {
  const pw = value(f, "passwordauthentication");
  const kbd = value(f, "kbdinteractiveauthentication");
  const pam = value(f, "usepam");
  const lockout =
    f.authorizedKeys.length === 0
      ? `First give some login user a key (no authorized_keys found for ${f.keyUsers.join(", ") || "any login user"}): ` +
        `${C.authorized_keys.entry.remediation}. Only then: ${C.password_auth.entry.remediation}`
      : undefined;
  if (pw.value === "yes")
    return C.password_auth.fail(ev(pw, "PasswordAuthentication"), {
      detail: "SSH accepts passwords, so they can be guessed",
      remediation: lockout,
    });
  // With PAM, keyboard-interactive asks for the same password under another name.
  if (kbd.value === "yes" && pam.value === "yes")
    return C.password_auth.fail(
      { source: where(kbd), excerpt: `KbdInteractiveAuthentication yes with UsePAM yes (${where(pam)})` },
      { detail: "SSH still asks for passwords through PAM keyboard-interactive", remediation: lockout },
    );
  return C.password_auth.pass(ev(pw, "PasswordAuthentication"));
}

function checkPorts(f: SshdFact): Finding {
  const configured = [...new Set(f.configured.map((p) => p.port))];
  const cfg = [...new Set(f.configured.map((p) => `${p.port} (${p.source})`))].join(", ");
  if (f.liveOwned) {
    const live = [...new Set(f.liveOwned.map((p) => p.port))];
    const same = live.length === configured.length && live.every((p) => configured.includes(p));
    const excerpt = `configured ${cfg}; sshd listening on ${live.join(", ") || "nothing"}`;
    if (same) return C.ports.pass({ source: "ss -Hltnp", excerpt });
    return C.ports.warn(
      { source: "ss -Hltnp", excerpt },
      { detail: "The running sshd does not listen where its configuration says", severity: "medium" },
    );
  }
  const listening = [...new Set(f.listening.map((p) => p.port))];
  const excerpt =
    `configured ${cfg}; ` +
    (listening.length
      ? `listening: ${f.listening.map((l) => l.source).join(", ")}`
      : "no live listener on those ports in /proc/net/tcp");
  const missing = configured.filter((p) => !listening.includes(p));
  if (missing.length === 0) return C.ports.pass({ source: "/proc/net/tcp", excerpt });
  return C.ports.warn(
    { source: "/proc/net/tcp", excerpt },
    { detail: `Nothing listens on sshd's configured port(s) ${missing.join(", ")}` },
  );
}

export function checkSsh({ sshd }: Pick<Facts, "sshd">): Finding[] {
  const out: Finding[] = [];
  const f = need(sshd, C.root_login, out);
  if (!f) return out;
  out.push(...partialProblems(sshd, C.root_login));

  const root = value(f, "permitrootlogin");
  out.push(
    C.root_login.verdict(root.value !== "yes", ev(root, "PermitRootLogin"), {
      detail: root.value === "yes" ? "root can log in over SSH with a password" : undefined,
    }),
  );
  out.push(checkPasswords(f));
  const empty = value(f, "permitemptypasswords");
  out.push(
    C.empty_passwords.verdict(empty.value !== "yes", ev(empty, "PermitEmptyPasswords"), {
      detail: empty.value === "yes" ? "SSH lets accounts with an empty password log in" : undefined,
    }),
  );

  const tcp = value(f, "allowtcpforwarding");
  out.push(
    tcp.value === "no" || tcp.value === "local"
      ? C.tcp_forwarding.pass(ev(tcp, "AllowTcpForwarding"))
      : C.tcp_forwarding.warn(ev(tcp, "AllowTcpForwarding"), {
          detail: "SSH allows remote (-R) forwarding: a login can tunnel services into this server",
        }),
  );
  const agent = value(f, "allowagentforwarding");
  out.push(
    agent.value === "no"
      ? C.agent_forwarding.pass(ev(agent, "AllowAgentForwarding"))
      : C.agent_forwarding.warn(ev(agent, "AllowAgentForwarding"), {
          detail: "SSH agent forwarding is on: root on this server can use a forwarded agent",
        }),
  );
  const x11 = value(f, "x11forwarding");
  out.push(
    C.x11_forwarding.verdict(x11.value !== "yes", ev(x11, "X11Forwarding"), {
      detail: x11.value === "yes" ? "X11 forwarding is on" : undefined,
    }),
  );

  const loose = f.matches.filter((m) => LOOSE[m.key]?.(m.value.toLowerCase()));
  out.push(
    loose.length === 0
      ? C.match_overrides.pass({
          source: f.files.join(", ") || "sshd -T",
          excerpt: `${f.matches.length} setting(s) in Match blocks, none loosening`,
        })
      : C.match_overrides.warn(
          {
            source: `${loose[0]!.source} line ${loose[0]!.line}`,
            excerpt: loose.map((m) => `Match ${m.criteria}: ${m.key} ${m.value} (line ${m.line})`).join("; "),
          },
          {
            detail: `A Match block sets ${[...new Set(loose.map((m) => m.key))].join(", ")} for some connections`,
          },
        ),
  );
  out.push(...checkSshSession(f));
  out.push(checkPorts(f));
  out.push(keysFinding(f, C.authorized_keys));
  out.push(...checkSshCa(f));
  return out;
}

function keysFinding(f: SshdFact, maker: FindingMaker): Finding {
  if (f.authorizedKeys.length > 0)
    return maker.pass({ source: f.authorizedKeys[0]!.path, excerpt: keysSummary(f) });
  if (f.keysProblems.length > 0) return maker.error(f.keysProblems[0]!);
  if (f.keysUnknown.length > 0)
    return maker.skip(
      `could not read ${f.keysUnknown.map((p) => p.source).join(", ")} (run as root to see them)`,
      f.keysUnknown[0]!.source,
    );
  return maker.warn(
    { source: "~/.ssh/authorized_keys", excerpt: keysSummary(f) },
    { detail: "No login user has an SSH key: turning passwords off now would lock everyone out" },
  );
}

export const sshLayer = defineLayer({
  layer: "ssh",
  needs: ["sshd", "banners"],
  check: (facts) => [...checkSsh(facts), ...checkSshBanner(facts)],
});
