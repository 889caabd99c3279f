/**
 * Install the fleet's SSH user CA on an agent: the CA key, the agent's principal, an empty
 * revocation list unless one is there (a KRL fetched from the shield is never replaced by an
 * empty one), and the sshd drop-in naming them; `sshd -t` before the reload, so a config sshd
 * refuses fails the run and the run is undone. Pure.
 */
import type { Change } from "../change/change.js";
import {
  renderPrincipals,
  renderSshCaDropIn,
  SSH_CA_DIR,
  SSH_CA_DROP_IN,
  SSH_CA_KEY,
  SSH_CA_KRL,
  SSH_CA_PRINCIPALS,
} from "../render/sshd-ca.js";
import type { PlanInput } from "./plan.js";

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
  changes.push({
    kind: "file",
    path: SSH_CA_PRINCIPALS,
    content: renderPrincipals(ca.agent),
    mode: 0o644,
    ...root,
    fixes: [],
  });
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
  });
  const touched = [SSH_CA_KEY, SSH_CA_PRINCIPALS, SSH_CA_KRL, SSH_CA_DROP_IN];
  changes.push({ kind: "command", argv: ["sshd", "-t"], onlyIf: touched, live: true, fixes: [] });
  changes.push({
    kind: "command",
    argv: ["systemctl", "reload", "ssh.service"],
    refresh: true,
    onlyIf: touched,
    live: true,
    fixes: [],
  });
  return changes;
}
