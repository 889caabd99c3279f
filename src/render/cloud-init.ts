import { stringify } from "yaml";

export interface CloudInitInput {
  /** The profile harden applies, as YAML; written to /etc/clawguard/profile.yaml. */
  profileYaml: string;
  /** What npm installs, e.g. "clawguard@0.1.0". */
  clawguard: string;
  /** Node.js release installed from nodejs.org (OpenClaw needs 24). */
  nodeVersion: string;
}

export const PROFILE_PATH = "/etc/clawguard/profile.yaml";
export const HARDEN_LOG = "/var/log/clawguard-harden.json";

/**
 * First-boot user-data: Node from nodejs.org's release tarball (Debian 12's nodejs is too
 * old), clawguard from npm, then `clawguard harden --apply` with the profile.
 */
export function renderCloudInit(c: CloudInitInput): string {
  if (!/^\d+\.\d+\.\d+$/.test(c.nodeVersion)) throw new Error(`node version "${c.nodeVersion}" is not X.Y.Z`);
  const installNode = [
    "set -eu",
    'case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "unsupported arch $(uname -m)" >&2; exit 1 ;; esac',
    `v=${c.nodeVersion}`,
    'curl -fsSL "https://nodejs.org/dist/v$v/node-v$v-linux-$arch.tar.xz" -o /tmp/node.tar.xz',
    'curl -fsSL "https://nodejs.org/dist/v$v/SHASUMS256.txt" | grep " node-v$v-linux-$arch.tar.xz$" | sed "s#node-v.*#/tmp/node.tar.xz#" | sha256sum -c -',
    "tar -xJf /tmp/node.tar.xz -C /usr/local --strip-components=1 --no-same-owner",
    "rm -f /tmp/node.tar.xz",
  ].join("\n");
  const doc = {
    package_update: true,
    packages: ["curl", "ca-certificates", "xz-utils"],
    write_files: [{ path: PROFILE_PATH, owner: "root:root", permissions: "0600", content: c.profileYaml }],
    runcmd: [
      ["sh", "-c", installNode],
      ["/usr/local/bin/npm", "install", "--global", "--no-fund", "--no-audit", c.clawguard],
      [
        "sh",
        "-c",
        `/usr/local/bin/clawguard harden --apply --profile ${PROFILE_PATH} --json > ${HARDEN_LOG} 2>&1`,
      ],
    ],
  };
  return "#cloud-config\n" + stringify(doc, { lineWidth: 0 });
}
