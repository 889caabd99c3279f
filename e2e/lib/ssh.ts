import { existsSync } from "node:fs";
import { netnsArgv } from "./netns.js";
import { cmd, type CmdResult } from "./run.js";

/** A new passphrase-less ed25519 key at `file` (and `file.pub`). */
export async function generateKey(file: string): Promise<void> {
  if (existsSync(file)) return;
  await cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "clawguard-e2e", "-f", file]);
}

export interface SshTarget {
  address: string;
  sshKey: string;
}

export interface SshOptions {
  user?: string;
  port?: number;
  /** A private key to offer instead of the target's authorized one; null offers none. */
  identity?: string | null;
  timeoutMs?: number;
  input?: string;
}

/**
 * Run the machine's ssh client from namespace `ns` (usually the container's peer) against the
 * container. Never throws on a refused or failed login: the exit code is the observation (255
 * is ssh's own failure: refused, timed out, or authentication denied).
 */
export function sshFrom(
  ns: string,
  target: SshTarget,
  command: string,
  opts: SshOptions = {},
): Promise<CmdResult> {
  const identity = opts.identity === undefined ? target.sshKey : opts.identity;
  const argv = [
    "ssh",
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-p",
    String(opts.port ?? 22),
    ...(identity ? ["-i", identity] : ["-o", "PubkeyAuthentication=no"]),
    `${opts.user ?? "root"}@${target.address}`,
    command,
  ];
  return cmd(netnsArgv(ns, argv), { check: false, input: opts.input, timeoutMs: opts.timeoutMs ?? 30_000 });
}
