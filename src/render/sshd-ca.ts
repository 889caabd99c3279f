/**
 * An agent's sshd trusting the fleet's SSH user CA, on OpenSSH's own machinery: the CA's public
 * key as `TrustedUserCAKeys`, an `AuthorizedPrincipalsFile` per account (`principals/%u`: sshd
 * reads the file of the account being logged in to, and an account without one takes no
 * certificate), and a `RevokedKeys` list the shield's KRL replaces. Key logins
 * (authorized_keys) are left as they are.
 *
 * Principals: `agent-<id>` (a grant without `--as`) is listed in the files of the agent's
 * default accounts only; `agent-<id>:<user>` (a grant `--as USER`) in USER's file only. Agent
 * ids and user names hold no `:` and no `,`, so a principal names one agent and one account.
 */
export const SSH_CA_DIR = "/etc/ssh/clawguard";
export const SSH_CA_KEY = `${SSH_CA_DIR}/fleet-ca.pub`;
/** A directory of per-account files since accounts are told apart; once a single file. */
export const SSH_CA_PRINCIPALS = `${SSH_CA_DIR}/principals`;
export const SSH_CA_PRINCIPALS_FILE = `${SSH_CA_PRINCIPALS}/%u`;
export const SSH_CA_KRL = `${SSH_CA_DIR}/revoked.krl`;
export const SSH_CA_DROP_IN = "/etc/ssh/sshd_config.d/40-clawguard-ca.conf";

/** A CA public key as sshd reads it: one line, TYPE BASE64 [COMMENT]; nothing private, no certificate. */
export const CA_PUBLIC_KEY =
  /^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;

/** An agent's id in shield.yaml, as a principal may carry it. */
export const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A Linux account name, as `grant --as` and `--ssh-ca-users` take it. */
export const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** The principal of a grant: `agent-<id>`, or `agent-<id>:<user>` for a grant `--as USER`. */
export function principalOf(agent: string, user?: string | null): string {
  return user ? `agent-${agent}:${user}` : `agent-${agent}`;
}

/** The principals file of one account. */
export function principalsFileOf(user: string): string {
  return `${SSH_CA_PRINCIPALS}/${user}`;
}

export function renderSshCaDropIn(): string {
  return [
    "# Written by clawguard harden --ssh-ca: certificates signed by the fleet's CA, for this",
    "# agent's principals, each account taking only those its own file lists, and not revoked",
    "# by the shield's KRL. Keys in authorized_keys keep working.",
    `TrustedUserCAKeys ${SSH_CA_KEY}`,
    `AuthorizedPrincipalsFile ${SSH_CA_PRINCIPALS_FILE}`,
    `RevokedKeys ${SSH_CA_KRL}`,
    "",
  ].join("\n");
}

/**
 * One account's file: the grant for this account by name, and for a default account also a
 * grant that names none.
 */
export function renderPrincipals(agent: string, user: string, isDefault: boolean): string {
  return [
    `# The principals a certificate may name to log in here as ${user}.`,
    ...(isDefault ? [principalOf(agent)] : []),
    principalOf(agent, user),
    "",
  ].join("\n");
}
