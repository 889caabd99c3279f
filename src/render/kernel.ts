import { UNUSED_MODULES } from "../checks/kernel-modules.js";
import { HARDENED_SYSCTLS } from "../facts/sysctl.js";
import type { SecurityRepo } from "../facts/apt-sources.js";

/** Why each group is safe for an agent's server, written above its lines. */
const WHY: Record<keyof typeof HARDENED_SYSCTLS, string> = {
  pointer_leaks: "Kernel addresses and the kernel log help an exploit and nothing an agent does.",
  core_dumps: "A core dump of a setuid program can hold another user's secrets.",
  rp_filter: "Drop, and log, packets whose source could not be routed back: spoofed traffic.",
  icmp_redirects: "A server with one way out takes no routing advice from the network, nor gives any.",
  source_routes: "Senders do not get to choose this server's route back.",
  syncookies: "Keep answering under a SYN flood.",
};

/**
 * The sysctl drop-in. Each key carries the `-` prefix: where a value cannot be set (a container,
 * whose kernel settings belong to its host, or a kernel without IPv6) the rest still apply, and
 * the audit reads the live values to say which did not.
 */
export function renderSysctlDropIn(): string {
  const lines = ["# Written by clawguard harden; clawguard rollback removes it."];
  for (const [group, sysctls] of Object.entries(HARDENED_SYSCTLS) as Array<
    [keyof typeof HARDENED_SYSCTLS, (typeof HARDENED_SYSCTLS)[keyof typeof HARDENED_SYSCTLS]]
  >) {
    lines.push(`# ${WHY[group]}`);
    for (const s of sysctls) lines.push(`-${s.key} = ${s.value}`);
  }
  return lines.join("\n") + "\n";
}

export function renderCoredumpDropIn(): string {
  return [
    "# Written by clawguard harden: a core dump of the gateway would hold its tokens and keys.",
    "[Coredump]",
    "Storage=none",
    "ProcessSizeMax=0",
    "",
  ].join("\n");
}

/** The security suite as a deb822 source, apt's format since 1.1 and the one Debian 12 installs. */
export function renderSecuritySources(repo: SecurityRepo): string {
  return [
    `# Written by clawguard harden: ${repo.distribution}'s security updates, for unattended-upgrades to install.`,
    "Types: deb",
    `URIs: ${repo.uri}`,
    `Suites: ${repo.suite}`,
    `Components: ${repo.components.join(" ")}`,
    `Signed-By: ${repo.signedBy}`,
    "",
  ].join("\n");
}

/** needrestart restarts what it finds running old libraries, instead of asking nobody. */
export function renderNeedrestartConf(): string {
  return [
    "# Written by clawguard harden: restart services on old libraries after upgrades.",
    "$nrconf{restart} = 'a';",
    "",
  ].join("\n");
}

/**
 * modprobe runs `/bin/true` in place of loading each module, whoever asks: a socket() call, a
 * dependency or a person typing modprobe. The blacklist lines keep them out of alias loading too.
 */
export function renderModprobeDropIn(): string {
  const block = (why: string, mods: readonly string[]) => [
    `# ${why}`,
    ...mods.flatMap((m) => [`install ${m} /bin/true`, `blacklist ${m}`]),
  ];
  return [
    "# Written by clawguard harden; clawguard rollback removes it.",
    ...block(
      "Network protocols nothing on an agent's server speaks, loaded on any user's socket().",
      UNUSED_MODULES.protocols,
    ),
    ...block("Storage buses a VPS has no port for.", UNUSED_MODULES.storage),
    "",
  ].join("\n");
}
