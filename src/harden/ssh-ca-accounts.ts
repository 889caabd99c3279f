/**
 * Which accounts of the agent take the fleet's certificates, and with which principals. Every
 * account that can log in, root aside, takes a grant made `--as` it (`agent-<id>:<user>`); the
 * default accounts take a grant made without `--as` (`agent-<id>`) too. The defaults are the
 * accounts `--ssh-ca-users` lists, or else the login accounts with an authorized_keys file
 * (the agent's admins). root takes no certificate unless listed. Pure.
 */
import { ClawguardError, UsageError } from "../errors.js";
import type { Facts } from "../facts/keys.js";
import { canLogIn } from "../facts/users.js";

export interface CaAccount {
  user: string;
  /** Opened by a grant without `--as`. */
  isDefault: boolean;
}

export function caAccounts(
  listed: readonly string[] | undefined,
  users: Facts["users"],
  sshd: Facts["sshd"] | undefined,
): CaAccount[] {
  if (users.status !== "ok")
    throw new ClawguardError(
      "CG_PLAN_REFUSED",
      `cannot list the agent's accounts (/etc/passwd), so no principals file can name them: ${
        users.status === "error" ? users.problems.map((p) => p.message).join("; ") : users.reason
      }`,
    );
  const known = new Set(users.value.users.map((u) => u.name));
  const missing = (listed ?? []).filter((u) => !known.has(u));
  if (missing.length)
    throw new UsageError(
      `sshCa.users (--ssh-ca-users) names ${missing.join(", ")}, not an account of this agent (/etc/passwd); nothing was changed`,
      { where: "--ssh-ca-users" },
    );
  const withKeys =
    sshd?.status === "ok" ? sshd.value.authorizedKeys.filter((k) => k.keys > 0).map((k) => k.user) : [];
  const defaults = new Set(listed ?? withKeys.filter((u) => u !== "root"));
  const login = users.value.users.filter((u) => u.uid !== 0 && u.name !== "root" && canLogIn(u));
  const names = new Set([...login.map((u) => u.name), ...defaults]);
  return [...names].sort().map((user) => ({ user, isDefault: defaults.has(user) }));
}
