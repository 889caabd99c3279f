/**
 * The shield's own sshd as the way in to agents: `ssh -J shield agent@ADDRESS` forwards to an
 * enrolled agent's SSH port, and to nothing else (PermitOpen). No remote forwarding, no socket
 * forwarding, no tunnel devices. The drop-in sorts first among sshd_config.d, since sshd keeps
 * the first value of each keyword. Pure.
 */
export const JUMP_DROP_IN = "/etc/ssh/sshd_config.d/05-clawguard-jump.conf";

/** `addresses`: the enrolled agents' tunnel addresses (no prefix). */
export function renderJumpDropIn(addresses: readonly string[], port = 22): string {
  const targets = [...new Set(addresses)].map((a) => (a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`));
  return [
    "# Written by clawguard (shield enroll / revoke): forwarding through this server reaches",
    "# enrolled agents' SSH only, for ssh -J. Rewritten as agents come and go.",
    "AllowTcpForwarding local",
    `PermitOpen ${targets.length > 0 ? targets.join(" ") : "none"}`,
    "AllowStreamLocalForwarding no",
    "GatewayPorts no",
    "PermitTunnel no",
    "",
  ].join("\n");
}
