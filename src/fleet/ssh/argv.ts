/**
 * The command lines for the system's ssh client. The user's ssh config, agent, certificates,
 * ProxyJump and known_hosts all apply; what fleet sets comes first on the command line, and
 * ssh keeps the first value it is given for an option, so neither a config file nor an
 * inventory's extra arguments can turn host key checking off or forward an agent to a server.
 */
import type { Target } from "../target.js";

export interface SshSettings {
  /** `-F FILE` instead of ~/.ssh/config. */
  configFile?: string;
  /** Private directory holding one control socket per host. */
  controlDir: string;
  /** Take the key of a host never seen before (a changed key is refused regardless). */
  acceptNewHostKeys: boolean;
  connectTimeoutS: number;
  /** The ssh binary; "ssh" on PATH by default. */
  ssh?: string;
}

/** An idle connection closes after this long, so none outlives a run that was killed. */
const PERSIST_S = 60;

function connectionOptions(s: SshSettings): string[] {
  return [
    ...(s.configFile !== undefined ? ["-F", s.configFile] : []),
    "-o",
    "BatchMode=yes",
    "-o",
    `StrictHostKeyChecking=${s.acceptNewHostKeys ? "accept-new" : "yes"}`,
    "-o",
    `ConnectTimeout=${Math.max(1, Math.round(s.connectTimeoutS))}`,
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "ControlMaster=auto",
    "-o",
    `ControlPath=${s.controlDir}/%C`,
    "-o",
    `ControlPersist=${PERSIST_S}`,
    "-o",
    "ForwardAgent=no",
    "-o",
    "ForwardX11=no",
    "-o",
    "ClearAllForwardings=yes",
    "-o",
    "PermitLocalCommand=no",
    "-o",
    "RequestTTY=no",
    "-o",
    "LogLevel=ERROR",
  ];
}

function targetOptions(t: Target): string[] {
  return [
    ...(t.port !== undefined ? ["-p", String(t.port)] : []),
    ...(t.user !== undefined ? ["-l", t.user] : []),
    ...(t.identityFile !== undefined ? ["-i", t.identityFile] : []),
    ...t.sshArgs,
  ];
}

/** argv that runs `remoteCommand` (one string, read by the login shell) on the host. */
export function sshArgv(t: Target, s: SshSettings, remoteCommand: string): string[] {
  return [s.ssh ?? "ssh", ...connectionOptions(s), ...targetOptions(t), "--", t.address, remoteCommand];
}

/** argv that asks the host's master connection to `check` itself or `exit`. */
export function controlArgv(t: Target, s: SshSettings, op: "check" | "exit"): string[] {
  return [s.ssh ?? "ssh", ...connectionOptions(s), ...targetOptions(t), "-O", op, "--", t.address];
}
