export const SSHD_DROP_IN = "/etc/ssh/sshd_config.d/50-clawguard.conf";

export interface SshdInput {
  /**
   * Some account can log in with a key. Only then are passwords switched off: otherwise the
   * operator would be locked out of a server they reach with a password.
   */
  keysPresent: boolean;
  /** Accounts for AllowUsers, only when they are known to be every account that logs in. */
  allowUsers?: string[];
  maxAuthTries: number;
  loginGraceTime: number;
  clientAliveInterval: number;
  clientAliveCountMax: number;
  /** The notice shown before authentication. */
  banner: string;
}

export function renderSshdDropIn(s: SshdInput): string {
  return [
    "# Written by clawguard harden. sshd keeps the first value it reads, and this file is",
    "# included before the rest of sshd_config.",
    "PermitRootLogin prohibit-password",
    "PermitEmptyPasswords no",
    // Local forwarding stays: ssh -L is how the operator reaches the loopback-only gateway.
    "AllowTcpForwarding local",
    "AllowAgentForwarding no",
    "X11Forwarding no",
    `MaxAuthTries ${s.maxAuthTries}`,
    `LoginGraceTime ${s.loginGraceTime}`,
    // Probes inside the encrypted channel find a vanished client; TCP keepalives can be spoofed.
    `ClientAliveInterval ${s.clientAliveInterval}`,
    `ClientAliveCountMax ${s.clientAliveCountMax}`,
    "TCPKeepAlive no",
    // VERBOSE logs the fingerprint of the key that logged in, for fail2ban and for the operator.
    "LogLevel VERBOSE",
    "Compression no",
    `Banner ${s.banner}`,
    ...(s.allowUsers?.length ? [`AllowUsers ${s.allowUsers.join(" ")}`] : []),
    ...(s.keysPresent
      ? ["PasswordAuthentication no", "KbdInteractiveAuthentication no"]
      : ["# PasswordAuthentication stays on: no account has an authorized_keys file yet."]),
    "",
  ].join("\n");
}
