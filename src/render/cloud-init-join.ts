/**
 * First-boot user-data for a fleet member born hardened and joined: clawguard installed, the
 * server hardened, the tunnel to the shield up and egress locked down to it, with no step by
 * hand. One script does it in order and logs each step, so that `cloud-init status` and one
 * log file say how far it got. Pure: the package was read and checked before this.
 */
import { stringify } from "yaml";

/** Where clawguard comes from at first boot. */
export type PackageSource =
  /** An npm spec (`clawguard@0.1.0`) or a tarball URL: npm fetches it, and its dependencies. */
  | { kind: "npm"; spec: string }
  /**
   * A tarball carried in the user-data. `bundled`: it holds its dependencies (and their built
   * native code), so it installs without a registry and without running install scripts.
   */
  | { kind: "embedded"; base64: string; bundled: boolean; name: string };

export interface JoinCloudInitInput {
  profileYaml: string;
  package: PackageSource;
  /** The join code from `shield enroll`: it carries the agent's key, so it is root's alone. */
  joinCode: string;
  /** Installed from nodejs.org when the image has no Node 20 or later. */
  nodeVersion: string;
  /** Extra flags for `lockdown --join` (e.g. --allow-dhcp). */
  lockdownFlags?: string[];
}

export const FIRSTBOOT = "/var/lib/clawguard/firstboot.sh";
export const FIRSTBOOT_LOG = "/var/log/clawguard-firstboot.log";
export const JOIN_CODE_PATH = "/etc/clawguard/join.code";
export const EMBEDDED_PACKAGE = "/var/lib/clawguard/clawguard.tgz";
const PROFILE = "/etc/clawguard/profile.yaml";

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The first-boot script: every step logged, the first failure stops it (set -e). */
export function firstBootScript(c: JoinCloudInitInput): string {
  if (!/^\d+\.\d+\.\d+$/.test(c.nodeVersion))
    throw new TypeError(`node version "${c.nodeVersion}" is not X.Y.Z`);
  const pkg = c.package;
  const install =
    pkg.kind === "npm"
      ? `npm install --global --no-fund --no-audit ${shellQuote(pkg.spec)}`
      : pkg.bundled
        ? // Everything it needs is inside, native code built: nothing to fetch, nothing to build.
          `npm install --global --no-fund --no-audit --offline --ignore-scripts ${EMBEDDED_PACKAGE}`
        : `npm install --global --no-fund --no-audit ${EMBEDDED_PACKAGE}`;
  return [
    "#!/bin/sh",
    "# Written by clawguard cloud-init --join: install clawguard, harden, join the shield, lock down.",
    "set -eu",
    `exec >>${FIRSTBOOT_LOG} 2>&1`,
    'step() { echo "== $(date -u +%FT%TZ) $*"; }',
    "export DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    // The image's package lists may be stale or missing; a mirror is only asked when needed.
    'apt_install() { apt-get install -y -q "$@" || { apt-get update -q && apt-get install -y -q "$@"; }; }',
    "step node",
    "if ! node -e 'process.exit(Number(process.versions.node.split(\".\")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then",
    "  apt_install curl ca-certificates xz-utils",
    '  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "unsupported arch $(uname -m)"; exit 1 ;; esac',
    `  v=${c.nodeVersion}`,
    '  curl -fsSL "https://nodejs.org/dist/v$v/node-v$v-linux-$arch.tar.xz" -o /tmp/node.tar.xz',
    '  curl -fsSL "https://nodejs.org/dist/v$v/SHASUMS256.txt" | grep " node-v$v-linux-$arch.tar.xz$" | sed "s#node-v.*#/tmp/node.tar.xz#" | sha256sum -c -',
    "  tar -xJf /tmp/node.tar.xz -C /usr/local --strip-components=1 --no-same-owner",
    "  rm -f /tmp/node.tar.xz",
    "fi",
    "step clawguard",
    install,
    "step wireguard",
    // Without recommends: wireguard-tools recommends a kernel with the module, and the running
    // kernel is the one that counts (a new one would need a reboot).
    "apt_install --no-install-recommends wireguard-tools nftables",
    // A kernel without the WireGuard module gets the user-space implementation.
    "if ip link add cgprobe0 type wireguard 2>/dev/null; then ip link del cgprobe0; else apt_install --no-install-recommends wireguard-go; fi",
    "step harden",
    `clawguard harden --apply --profile ${PROFILE} --json > /var/log/clawguard-harden.json || echo "harden did not complete: /var/log/clawguard-harden.json says why; joining the shield anyway"`,
    "step join",
    [
      "clawguard lockdown",
      `--join "$(cat ${JOIN_CODE_PATH})"`,
      "--apply",
      ...(c.lockdownFlags ?? []).map(shellQuote),
      "--json > /var/log/clawguard-join.json",
    ].join(" "),
    // The key is in the tunnel's config now; the code (which carries it too) is not needed.
    `rm -f ${JOIN_CODE_PATH}`,
    "step done",
    "",
  ].join("\n");
}

export function renderJoinCloudInit(c: JoinCloudInitInput): string {
  const files: Array<Record<string, string>> = [
    { path: PROFILE, owner: "root:root", permissions: "0600", content: c.profileYaml },
    { path: JOIN_CODE_PATH, owner: "root:root", permissions: "0600", content: c.joinCode.trim() + "\n" },
    { path: FIRSTBOOT, owner: "root:root", permissions: "0700", content: firstBootScript(c) },
  ];
  if (c.package.kind === "embedded")
    files.push({
      path: EMBEDDED_PACKAGE,
      owner: "root:root",
      permissions: "0600",
      encoding: "b64",
      content: c.package.base64,
    });
  const doc = { write_files: files, runcmd: [[FIRSTBOOT]] };
  return "#cloud-config\n" + stringify(doc, { lineWidth: 0 });
}

/** Providers' user-data limits, smallest first: what a user-data this big is too big for. */
export const USER_DATA_LIMITS: ReadonlyArray<{ bytes: number; examples: string }> = [
  { bytes: 16 * 1024, examples: "AWS EC2 (16 KB)" },
  { bytes: 32 * 1024, examples: "Hetzner Cloud (32 KiB)" },
  { bytes: 64 * 1024, examples: "DigitalOcean and Azure (64 KiB)" },
];

/** A warning for each common limit `userData` passes, the largest first; empty when it fits them all. */
export function sizeWarnings(userData: string): string[] {
  const bytes = Buffer.byteLength(userData, "utf8");
  const over = USER_DATA_LIMITS.filter((l) => bytes > l.bytes);
  if (over.length === 0) return [];
  const worst = over[over.length - 1]!;
  return [
    `the user-data is ${Math.ceil(bytes / 1024)} KiB, over the ${worst.bytes / 1024} KiB limit of ${over.map((l) => l.examples).join(", ")}: ` +
      "give --package a tarball URL or an npm spec instead of a file to embed, or use a seed without a limit (NoCloud)",
  ];
}
