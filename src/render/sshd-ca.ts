/**
 * An agent's sshd trusting the fleet's SSH user CA, on OpenSSH's own machinery: the CA's public
 * key as `TrustedUserCAKeys`, an `AuthorizedPrincipalsFile` naming this agent's principal only
 * (without it, any certificate whose principal matches the user name would be let in), and a
 * `RevokedKeys` list the shield's KRL replaces. Key logins (authorized_keys) are left as they are.
 */
export const SSH_CA_DIR = "/etc/ssh/clawguard";
export const SSH_CA_KEY = `${SSH_CA_DIR}/fleet-ca.pub`;
export const SSH_CA_PRINCIPALS = `${SSH_CA_DIR}/principals`;
export const SSH_CA_KRL = `${SSH_CA_DIR}/revoked.krl`;
export const SSH_CA_DROP_IN = "/etc/ssh/sshd_config.d/40-clawguard-ca.conf";

/** A CA public key as sshd reads it: one line, TYPE BASE64 [COMMENT]; nothing private, no certificate. */
export const CA_PUBLIC_KEY =
  /^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;

export function principalOf(agent: string): string {
  return `agent-${agent}`;
}

export function renderSshCaDropIn(): string {
  return [
    "# Written by clawguard harden --ssh-ca: certificates signed by the fleet's CA, for this",
    "# agent's principal only, and not revoked by the shield's KRL. Keys in authorized_keys",
    "# keep working.",
    `TrustedUserCAKeys ${SSH_CA_KEY}`,
    `AuthorizedPrincipalsFile ${SSH_CA_PRINCIPALS}`,
    `RevokedKeys ${SSH_CA_KRL}`,
    "",
  ].join("\n");
}

export function renderPrincipals(agent: string): string {
  return `# The one principal a certificate must name to log in here.\n${principalOf(agent)}\n`;
}
