/**
 * What ssh's own failure (exit 255) means, read from what it printed: a changed or unknown host
 * key, a refused login, a host that does not answer, or something else. The message keeps ssh's
 * words; the hint says what a person does next.
 */
import { ClawguardError } from "../../errors.js";

function lastLine(stderr: string): string {
  return (
    stderr
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? "no message"
  );
}

export function classifySshFailure(host: string, address: string, stderr: string): ClawguardError {
  const where = host;
  const changed = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/.test(stderr);
  if (changed) {
    const offending = /Offending \S+ key in (\S+):(\d+)/.exec(stderr);
    const fp = /key sent by the remote host is\s+(\S+?)\.?\s*$/m.exec(stderr)?.[1];
    return new ClawguardError(
      "CG_SSH_HOST_KEY_CHANGED",
      `the host key of ${address} has changed${fp ? ` (it now sends ${fp})` : ""}` +
        `${offending ? `; the recorded one is ${offending[1]}:${offending[2]}` : ""}: refused`,
      {
        where,
        hint: `find out why before anything else; if the server was reinstalled, check the new fingerprint out of band, then ssh-keygen -R ${address}`,
      },
    );
  }
  if (/No \S+ host key is known for|Host key verification failed/.test(stderr))
    return new ClawguardError("CG_SSH_HOST_KEY_UNKNOWN", `${address} is not in known_hosts: refused`, {
      where,
      hint: "check its fingerprint, then add it to known_hosts (ssh once by hand) or pass --accept-new-host-keys",
    });
  const denied = /Permission denied \(([^)]*)\)/.exec(stderr);
  if (denied)
    return new ClawguardError("CG_SSH_LOGIN_DENIED", `login refused (${denied[1]})`, {
      where,
      hint: "check ansible_user and the key offered (ansible_ssh_private_key_file, the agent); fleet never asks for a password",
    });
  if (
    /Could not resolve hostname|Connection refused|No route to host|Network is unreachable|Connection timed out|timed out during banner exchange|Connection closed by|Connection reset by|kex_exchange_identification/.test(
      stderr,
    )
  )
    return new ClawguardError("CG_SSH_UNREACHABLE", lastLine(stderr).replace(/^ssh: /, ""), {
      where,
      hint: "is the host up, and is its address (ansible_host, ansible_port) right?",
    });
  return new ClawguardError("CG_SSH_FAILED", `ssh failed: ${lastLine(stderr)}`, { where });
}
