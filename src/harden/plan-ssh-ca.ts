/**
 * Install the fleet's SSH user CA on an agent: the CA key, a principals file per account that
 * takes certificates (see ssh-ca-accounts.ts; an old single principals file is removed), an empty
 * revocation list unless one is there (a KRL fetched from the shield is never replaced by an
 * empty one), and the sshd drop-in naming them; `sshd -t` before the reload, so a config sshd
 * refuses fails the run and the run is undone. With a KRL URL, a timer that fetches the
 * shield's list every 15 s (ssh-ca fetch-krl), enabled and started. Pure.
 */
import { posix } from "node:path";
import { changePaths, type Change } from "../change/change.js";
import {
  principalsFileOf,
  renderPrincipals,
  renderSshCaDropIn,
  SSH_CA_DIR,
  SSH_CA_DROP_IN,
  SSH_CA_KEY,
  SSH_CA_KRL,
  SSH_CA_PRINCIPALS,
} from "../render/sshd-ca.js";
import {
  DEFAULT_LAUNCHER,
  KRL_FETCH_SERVICE_FILE,
  KRL_FETCH_TIMER,
  KRL_FETCH_TIMER_FILE,
  KRL_FETCH_TIMER_LINK,
  renderKrlFetchService,
  renderKrlFetchTimer,
} from "../render/krl-fetch-unit.js";
import type { PlanInput } from "./plan.js";
import { caAccounts, type CaAccount } from "./ssh-ca-accounts.js";

const root = { owner: "root", group: "root" };

/** `planned`: the changes before these (the ssh layer's may already make sshd_config.d). */
export function planSshCa({ profile, facts }: PlanInput, planned: readonly Change[] = []): Change[] {
  const ca = profile.sshCa;
  if (!ca) return [];
  const changes: Change[] = [];
  if (!facts.files.get(SSH_CA_DIR)?.stat)
    changes.push({ kind: "mkdir", path: SSH_CA_DIR, mode: 0o755, ...root, fixes: [] });
  const made = planned.some((c) => c.kind === "mkdir" && c.path === "/etc/ssh/sshd_config.d");
  if (!made && !facts.files.get("/etc/ssh/sshd_config.d")?.stat && !facts.files.get(SSH_CA_DROP_IN)?.stat)
    changes.push({ kind: "mkdir", path: "/etc/ssh/sshd_config.d", mode: 0o755, ...root, fixes: [] });
  changes.push({
    kind: "file",
    path: SSH_CA_KEY,
    content: ca.publicKey.trim() + "\n",
    mode: 0o644,
    ...root,
    fixes: [],
  });
  const accounts = caAccounts(ca.users, facts.users, facts.sshd);
  const principals = planPrincipals(ca.agent, accounts, facts);
  changes.push(...principals);
  const defaults = accounts.filter((a) => a.isDefault).map((a) => a.user);
  // sshd reads an empty RevokedKeys file as revoking nothing; a missing one refuses every key.
  if (!facts.files.get(SSH_CA_KRL)?.stat)
    changes.push({ kind: "file", path: SSH_CA_KRL, content: "", mode: 0o644, ...root, fixes: [] });
  changes.push({
    kind: "file",
    path: SSH_CA_DROP_IN,
    content: renderSshCaDropIn(),
    mode: 0o644,
    ...root,
    fixes: [],
    note: defaults.length
      ? `a grant without --as opens ${defaults.join(", ")}; a grant --as USER opens USER only`
      : "no default account (no login account has an authorized_keys file): a grant without --as opens none; name them with --ssh-ca-users",
  });
  const touched = [SSH_CA_KEY, SSH_CA_KRL, SSH_CA_DROP_IN, ...principals.flatMap((c) => changePaths(c))];
  changes.push({ kind: "command", argv: ["sshd", "-t"], onlyIf: touched, live: true, fixes: [] });
  changes.push({
    kind: "command",
    argv: ["systemctl", "reload", "ssh.service"],
    refresh: true,
    onlyIf: touched,
    live: true,
    fixes: [],
  });
  if (ca.krlUrl !== undefined) changes.push(...planKrlFetch(ca.krlUrl, ca.launcher ?? DEFAULT_LAUNCHER));
  return changes;
}

/**
 * The principals directory, root's and 0755, with one 0644 file per account; files of accounts
 * that no longer take certificates are removed, and so is the single file of the old layout
 * (its rollback puts it back once the directory is gone again).
 */
function planPrincipals(agent: string, accounts: CaAccount[], facts: PlanInput["facts"]): Change[] {
  const changes: Change[] = [];
  const now = facts.files.get(SSH_CA_PRINCIPALS)?.stat;
  if (now && now.type !== "dir") changes.push({ kind: "remove", path: SSH_CA_PRINCIPALS, fixes: [] });
  if (now?.type !== "dir")
    changes.push({ kind: "mkdir", path: SSH_CA_PRINCIPALS, mode: 0o755, ...root, fixes: [] });
  else if (now.mode !== 0o755)
    changes.push({ kind: "chmod", path: SSH_CA_PRINCIPALS, mode: 0o755, fixes: [] });
  const wanted = new Set(accounts.map((a) => principalsFileOf(a.user)));
  for (const e of facts.trees.get(SSH_CA_PRINCIPALS) ?? [])
    if (posix.dirname(e.path) === SSH_CA_PRINCIPALS && e.type !== "dir" && !wanted.has(e.path))
      changes.push({ kind: "remove", path: e.path, fixes: [] });
  for (const a of accounts)
    changes.push({
      kind: "file",
      path: principalsFileOf(a.user),
      content: renderPrincipals(agent, a.user, a.isDefault),
      mode: 0o644,
      ...root,
      fixes: [],
    });
  return changes;
}

/**
 * The timer after sshd has its RevokedKeys: the first fetch then replaces the empty list. The
 * timer is enabled by its link and started; rollback stops it and removes both files.
 */
function planKrlFetch(url: string, launcher: readonly string[]): Change[] {
  const units = [KRL_FETCH_SERVICE_FILE, KRL_FETCH_TIMER_FILE];
  return [
    {
      kind: "file",
      path: KRL_FETCH_SERVICE_FILE,
      content: renderKrlFetchService(launcher, url),
      mode: 0o644,
      ...root,
      fixes: [],
    },
    {
      kind: "file",
      path: KRL_FETCH_TIMER_FILE,
      content: renderKrlFetchTimer(),
      mode: 0o644,
      ...root,
      fixes: [],
    },
    { kind: "symlink", path: KRL_FETCH_TIMER_LINK, target: KRL_FETCH_TIMER_FILE, ...root, fixes: [] },
    {
      kind: "command",
      argv: ["systemctl", "daemon-reload"],
      refresh: true,
      onlyIf: units,
      live: true,
      fixes: [],
    },
    { kind: "service", unit: KRL_FETCH_TIMER, fixes: [] },
  ];
}
