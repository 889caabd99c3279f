import { coredumpSetting, COREDUMP_CONF, hardCoreLimit, type CoredumpFact } from "../facts/coredump.js";
import type { Facts } from "../facts/keys.js";
import {
  HARDENED_SYSCTLS,
  liveValue,
  persistentValue,
  type HardenedSysctl,
  type SysctlFact,
  type SysctlGroup,
} from "../facts/sysctl.js";
import { catalog, need, partialProblems, type CatalogEntry, type FindingMaker } from "./catalog.js";
import type { Finding } from "./finding.js";
import { checkKernelModules } from "./kernel-modules.js";
import { defineLayer } from "./layer.js";

export const SYSCTL_DROP_IN = "/etc/sysctl.d/60-clawguard.conf";
export const COREDUMP_DROP_IN = "/etc/systemd/coredump.conf.d/60-clawguard.conf";
export const LIMITS_DROP_IN = "/etc/security/limits.d/60-clawguard.conf";

const APPLY = `sysctl -p ${SYSCTL_DROP_IN}`;

function sysctlEntry(severity: CatalogEntry["severity"], title: string, group: SysctlGroup): CatalogEntry {
  const lines = HARDENED_SYSCTLS[group].map((s) => `${s.key} = ${s.value}`).join("\\n");
  return {
    severity,
    title,
    remediation: `printf '${lines}\\n' >> ${SYSCTL_DROP_IN} && ${APPLY}`,
    fixable: true,
  };
}

const C = catalog("kernel", {
  pointer_leaks: sysctlEntry(
    "medium",
    "Kernel addresses and the kernel log are hidden from unprivileged users (kptr_restrict, dmesg_restrict)",
    "pointer_leaks",
  ),
  rp_filter: sysctlEntry(
    "medium",
    "Packets with a source address that cannot be routed back are dropped and logged (rp_filter, log_martians)",
    "rp_filter",
  ),
  icmp_redirects: sysctlEntry(
    "medium",
    "ICMP redirects are neither accepted nor sent, for IPv4 and IPv6",
    "icmp_redirects",
  ),
  source_routes: sysctlEntry(
    "medium",
    "Source-routed packets are refused, for IPv4 and IPv6",
    "source_routes",
  ),
  syncookies: sysctlEntry("low", "SYN cookies keep the server answering under a SYN flood", "syncookies"),
  core_dumps: {
    severity: "high",
    title: "Core dumps, which can hold the gateway's secrets, are not written to disk",
    remediation:
      `echo 'fs.suid_dumpable = 0' >> ${SYSCTL_DROP_IN} && ${APPLY}; ` +
      `printf '[Coredump]\\nStorage=none\\nProcessSizeMax=0\\n' > ${COREDUMP_DROP_IN}; ` +
      `echo '* hard core 0' > ${LIMITS_DROP_IN}`,
    fixable: true,
  },
  host_kernel: {
    severity: "info",
    title: "Every hardened sysctl set for boot is also in force now",
    remediation:
      "these values are read-only here (a container): set them on the host that runs it, or reboot a VM",
    fixable: false,
  },
});

interface Judged {
  bad: string[];
  /** Set right for boot, wrong now, and this system cannot change it (a container's host kernel). */
  hostOwned: string[];
  good: string[];
}

function judgeSysctls(f: SysctlFact, wanted: HardenedSysctl[]): Judged {
  const out: Judged = { bad: [], hostOwned: [], good: [] };
  for (const w of wanted) {
    const p = persistentValue(f, w.key);
    const live = liveValue(f, w.key);
    const at = p
      ? `${w.key} = ${p.value} (${p.source} line ${p.line})`
      : `${w.key} not set in any sysctl.d file`;
    const now = live === undefined ? "" : `, now ${live}`;
    if (!p || !w.accept.includes(p.value)) out.bad.push(at + now);
    else if (live !== undefined && !w.accept.includes(live)) {
      if (f.readOnly.includes(w.key))
        out.hostOwned.push(`${w.key}: ${p.value} at boot, now ${live} (read-only here)`);
      else out.bad.push(`${at}, but the kernel holds ${live} now`);
    } else out.good.push(at + now);
  }
  return out;
}

function sysctlFinding(maker: FindingMaker, f: SysctlFact, j: Judged): Finding {
  if (j.bad.length === 0)
    return maker.pass({ source: f.files.join(", ") || "/etc/sysctl.d", excerpt: j.good.join("; ") });
  return maker.fail({ source: f.files.join(", ") || "/etc/sysctl.d", excerpt: j.bad.join("; ") });
}

function coredumpProblems(c: CoredumpFact): string[] {
  const storage = coredumpSetting(c, "Storage");
  const size = coredumpSetting(c, "ProcessSizeMax");
  const out: string[] = [];
  if (storage?.value.toLowerCase() !== "none")
    out.push(
      storage
        ? `Storage=${storage.value} (${storage.at})`
        : "systemd-coredump Storage not set (it stores dumps)",
    );
  if (size?.value !== "0")
    out.push(size ? `ProcessSizeMax=${size.value} (${size.at})` : "systemd-coredump ProcessSizeMax not set");
  const hard = hardCoreLimit(c);
  if (hard?.value !== "0")
    out.push(
      hard
        ? `${hard.domain} ${hard.type} core ${hard.value} (${hard.source} line ${hard.line})`
        : "no hard core limit for logins in /etc/security/limits.conf or limits.d",
    );
  return out;
}

export function checkKernel({ sysctl, coredump }: Pick<Facts, "sysctl" | "coredump">): Finding[] {
  const out: Finding[] = [];
  const f = need(sysctl, C.pointer_leaks, out);
  if (!f) return out;
  out.push(...partialProblems(sysctl, C.pointer_leaks));
  const hostOwned: string[] = [];
  const groups: Array<[SysctlGroup, FindingMaker]> = [
    ["pointer_leaks", C.pointer_leaks],
    ["rp_filter", C.rp_filter],
    ["icmp_redirects", C.icmp_redirects],
    ["source_routes", C.source_routes],
    ["syncookies", C.syncookies],
  ];
  for (const [group, maker] of groups) {
    const j = judgeSysctls(f, HARDENED_SYSCTLS[group]);
    hostOwned.push(...j.hostOwned);
    out.push(sysctlFinding(maker, f, j));
  }
  const dumps = judgeSysctls(f, HARDENED_SYSCTLS.core_dumps);
  hostOwned.push(...dumps.hostOwned);
  const c = need(coredump, C.core_dumps, out);
  if (c) {
    const bad = [...dumps.bad, ...coredumpProblems(c)];
    const source = [...f.files, ...c.files].join(", ") || COREDUMP_CONF;
    out.push(
      bad.length === 0
        ? C.core_dumps.pass({
            source,
            excerpt: [...dumps.good, "Storage=none, ProcessSizeMax=0, * hard core 0"].join("; "),
          })
        : C.core_dumps.fail({ source, excerpt: bad.join("; ") }),
    );
  }
  if (f.live === undefined)
    out.push(C.host_kernel.skip("not the running system: only the files were read", "/proc/sys"));
  else if (hostOwned.length === 0)
    out.push(
      C.host_kernel.pass({ source: "/proc/sys", excerpt: "every hardened value set for boot holds now" }),
    );
  else out.push(C.host_kernel.warn({ source: "/proc/sys", excerpt: hostOwned.join("; ") }));
  return out;
}

export const kernelLayer = defineLayer({
  layer: "kernel",
  needs: ["sysctl", "coredump", "modprobe"],
  check: (facts) => [...checkKernel(facts), ...checkKernelModules(facts)],
});
