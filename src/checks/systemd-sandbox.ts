import type { GatewayUnit } from "../facts/openclaw.js";
import { catalog, type CatalogEntry, type FindingMaker } from "./catalog.js";
import type { Finding, Severity } from "./finding.js";

const YES = /^(yes|true|on|1)$/i;

interface Directive {
  key: string;
  severity: Severity;
  /** The line to write in [Service]. */
  want: string;
  why: string;
  /** Whether the directive's values (undefined: not set at all) meet the bar. */
  good(values: string[] | undefined): boolean;
}

export const isYes = (v: string[] | undefined) =>
  v !== undefined && v.length > 0 && YES.test(v[v.length - 1]!);
export const last = (v: string[] | undefined) => (v && v.length ? v[v.length - 1] : undefined);

/** The sandbox a Node.js gateway survives; each line is one finding, weighted like systemd-analyze. */
export const DIRECTIVES: Directive[] = [
  {
    key: "NoNewPrivileges",
    severity: "high",
    want: "NoNewPrivileges=yes",
    why: "setuid binaries can raise privileges",
    good: isYes,
  },
  {
    key: "ProtectSystem",
    severity: "high",
    want: "ProtectSystem=strict",
    why: "the agent can write to the OS",
    good: (v) => last(v) === "strict",
  },
  {
    key: "ProtectHome",
    severity: "high",
    want: "ProtectHome=tmpfs",
    why: "other users' homes are visible",
    good: (v) => ["yes", "true", "read-only", "tmpfs"].includes(last(v) ?? ""),
  },
  {
    key: "PrivateTmp",
    severity: "medium",
    want: "PrivateTmp=yes",
    why: "shares /tmp with every other process",
    good: isYes,
  },
  {
    key: "PrivateDevices",
    severity: "medium",
    want: "PrivateDevices=yes",
    why: "raw devices are reachable",
    good: isYes,
  },
  {
    key: "PrivateUsers",
    severity: "medium",
    want: "PrivateUsers=yes",
    why: "sees every user of the host",
    good: (v) => isYes(v) || ["self", "identity"].includes(last(v) ?? ""),
  },
  {
    key: "ProtectKernelTunables",
    severity: "medium",
    want: "ProtectKernelTunables=yes",
    why: "can change /proc/sys",
    good: isYes,
  },
  {
    key: "ProtectKernelModules",
    severity: "medium",
    want: "ProtectKernelModules=yes",
    why: "can load kernel modules",
    good: isYes,
  },
  {
    key: "ProtectKernelLogs",
    severity: "low",
    want: "ProtectKernelLogs=yes",
    why: "can read the kernel log",
    good: isYes,
  },
  {
    key: "ProtectControlGroups",
    severity: "medium",
    want: "ProtectControlGroups=yes",
    why: "can change cgroups",
    good: isYes,
  },
  {
    key: "ProtectProc",
    severity: "medium",
    want: "ProtectProc=invisible",
    why: "sees other processes and their command lines",
    good: (v) => ["invisible", "noaccess"].includes(last(v) ?? ""),
  },
  {
    key: "RestrictAddressFamilies",
    severity: "medium",
    want: "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    why: "can open netlink and raw packet sockets",
    good: (v) =>
      v !== undefined &&
      v.length > 0 &&
      !v.some((x) => x.startsWith("~")) &&
      !v.some((x) => /AF_(PACKET|NETLINK)/.test(x)),
  },
  {
    key: "RestrictNamespaces",
    severity: "medium",
    want: "RestrictNamespaces=yes",
    why: "can create namespaces, a common kernel attack surface",
    good: isYes,
  },
  {
    key: "LockPersonality",
    severity: "low",
    want: "LockPersonality=yes",
    why: "can change execution domain",
    good: isYes,
  },
  {
    key: "RestrictRealtime",
    severity: "low",
    want: "RestrictRealtime=yes",
    why: "can starve the CPU with realtime scheduling",
    good: isYes,
  },
  {
    key: "CapabilityBoundingSet",
    severity: "high",
    want: "CapabilityBoundingSet=",
    why: "keeps capabilities root could use",
    good: (v) => v !== undefined && v.length === 0,
  },
  {
    key: "AmbientCapabilities",
    severity: "high",
    want: "AmbientCapabilities=",
    why: "hands capabilities to a non-root process",
    good: (v) => v === undefined || v.length === 0,
  },
  {
    key: "UMask",
    severity: "low",
    want: "UMask=0077",
    why: "new files (sessions, credentials) are readable by others",
    good: (v) => ["0077", "077"].includes(last(v) ?? ""),
  },
  {
    key: "LimitCORE",
    severity: "medium",
    want: "LimitCORE=0",
    why: "a crash writes a core dump holding the gateway's tokens and keys",
    good: (v) => last(v) === "0",
  },
  {
    key: "SystemCallArchitectures",
    severity: "low",
    want: "SystemCallArchitectures=native",
    why: "foreign-ABI syscalls bypass filters",
    good: (v) => last(v) === "native",
  },
];

function snake(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/SUIDSGID/, "suid_sgid")
    .toLowerCase();
}

const DIRECTIVE_ENTRIES = Object.fromEntries(
  DIRECTIVES.map((d): [string, CatalogEntry] => [
    snake(d.key),
    {
      severity: d.severity,
      title: `The unit sets ${d.want}`,
      remediation: `add ${d.want} to [Service] (systemctl edit UNIT)`,
      fixable: true,
    },
  ]),
);

const D = catalog("systemd", DIRECTIVE_ENTRIES);

/** Every finding maker of the sandbox directives, for layers that skip them all at once. */
export const SANDBOX: FindingMaker[] = Object.values(D);

/** One finding per sandbox directive of the unit that runs the gateway. */
export function checkSandbox(u: GatewayUnit): Finding[] {
  return DIRECTIVES.map((d) => {
    const v = u.directives[d.key];
    const shown = v === undefined ? `${d.key} not set` : `${d.key}=${v.join(" ")}`;
    return D[snake(d.key)]!.verdict(
      d.good(v),
      { source: u.directiveAt[d.key] ?? u.path, excerpt: shown },
      d.good(v)
        ? undefined
        : {
            detail: `The unit lacks ${d.want}: ${d.why}`,
            remediation: `add ${d.want} to [Service] (systemctl edit ${u.name})`,
          },
    );
  });
}
