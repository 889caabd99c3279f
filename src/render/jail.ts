export type JailBackend = { kind: "systemd" } | { kind: "file"; logpath: string };

export interface JailInput {
  sshPorts: number[];
  backend: JailBackend;
}

/**
 * Where sshd's log really is decides the backend: Debian 12 has no rsyslog, so no auth.log,
 * and a jail pointed at a missing file stops fail2ban from starting at all.
 */
export function chooseJailBackend(has: {
  authLog: boolean;
  secureLog: boolean;
  journald: boolean;
}): JailBackend {
  if (has.authLog) return { kind: "file", logpath: "/var/log/auth.log" };
  if (has.secureLog) return { kind: "file", logpath: "/var/log/secure" };
  if (has.journald) return { kind: "systemd" };
  return { kind: "file", logpath: "/var/log/auth.log" };
}

export function renderJailLocal(j: JailInput): string {
  const ports = [...new Set(j.sshPorts)].sort((a, b) => a - b);
  return [
    "# Written by clawguard harden.",
    "[DEFAULT]",
    "bantime = 3600",
    "findtime = 600",
    "maxretry = 5",
    "",
    "[sshd]",
    "enabled = true",
    `port = ${ports.join(",")}`,
    ...(j.backend.kind === "systemd"
      ? ["backend = systemd"]
      : ["backend = auto", `logpath = ${j.backend.logpath}`]),
    // A key that is not authorized leaves only "Connection closed by authenticating user ...
    // [preauth]" in sshd's log, which the normal mode ignores: key guessing would never be banned.
    "mode = aggressive",
    "",
  ].join("\n");
}
