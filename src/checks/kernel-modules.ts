import type { Facts } from "../facts/keys.js";
import { moduleDisabledBy } from "../facts/modprobe.js";
import { catalog, need, partialProblems } from "./catalog.js";
import type { Finding } from "./finding.js";

export const MODPROBE_DROP_IN = "/etc/modprobe.d/60-clawguard.conf";

/**
 * Modules an agent's server never needs, that the kernel would otherwise load on demand: rare
 * network protocols, whose code has had remotely reachable flaws and loads the moment any
 * local user opens such a socket, and storage buses a VPS has no port for.
 */
export const UNUSED_MODULES = {
  protocols: ["dccp", "sctp", "rds", "tipc"],
  storage: ["usb-storage", "firewire-core"],
} as const;

export const UNUSED_MODULE_NAMES: string[] = [...UNUSED_MODULES.protocols, ...UNUSED_MODULES.storage];

const C = catalog("kernel", {
  unused_modules: {
    severity: "low",
    title: "Network protocols and storage drivers an agent's server never uses cannot be loaded",
    remediation: `printf '${UNUSED_MODULE_NAMES.map((m) => `install ${m} /bin/true\\nblacklist ${m}`).join("\\n")}\\n' > ${MODPROBE_DROP_IN}`,
    fixable: true,
  },
});

export function checkKernelModules({ modprobe }: Pick<Facts, "modprobe">): Finding[] {
  const out: Finding[] = [];
  const f = need(modprobe, C.unused_modules, out);
  if (!f) return out;
  out.push(...partialProblems(modprobe, C.unused_modules));
  const loadable: string[] = [];
  const disabled: string[] = [];
  for (const m of UNUSED_MODULE_NAMES) {
    const by = moduleDisabledBy(f, m);
    if (by) disabled.push(`install ${by.module} ${by.command} (${by.source} line ${by.line})`);
    else loadable.push(m);
  }
  const source = f.files.join(", ") || "/etc/modprobe.d";
  out.push(
    loadable.length === 0
      ? C.unused_modules.pass({ source, excerpt: disabled.join("; ") })
      : C.unused_modules.fail({
          source,
          excerpt: `loadable on demand: ${loadable.join(", ")} (no install line that loads nothing)`,
        }),
  );
  return out;
}
