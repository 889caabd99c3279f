import { aptSetting } from "../facts/aptconf.js";
import type { Facts } from "../facts/keys.js";
import { liveMountsRead, type MountEntry } from "../facts/mounts.js";
import { catalog, need, partialProblems } from "./catalog.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";

const REQUIRED = ["noexec", "nosuid", "nodev"] as const;

const C = catalog("tmp", {
  live_options: {
    severity: "high",
    title: "/tmp is mounted noexec,nosuid,nodev now",
    remediation: "mount -o remount,noexec,nosuid,nodev /tmp",
    fixable: true,
  },
  persistent_options: {
    severity: "high",
    title: "/tmp stays noexec,nosuid,nodev after a reboot",
    remediation:
      "add to /etc/fstab: tmpfs /tmp tmpfs rw,noexec,nosuid,nodev,size=512M,mode=1777 0 0 (or, where /tmp is tmp.mount, a drop-in /etc/systemd/system/tmp.mount.d/clawguard.conf with [Mount] Options=mode=1777,strictatime,noexec,nosuid,nodev)",
    fixable: true,
  },
  apt_tempdir: {
    severity: "medium",
    title: "apt extracts debconf templates outside /tmp, so upgrades survive a noexec /tmp",
    remediation:
      "echo 'APT::ExtractTemplates::TempDir \"/var/cache/apt/tmp\";' > /etc/apt/apt.conf.d/50clawguard-tmp",
    fixable: true,
  },
});

function missing(opts: string[]): string[] {
  return REQUIRED.filter((o) => !opts.includes(o));
}

function describeMount(m: MountEntry): string {
  return `${m.device} ${m.mountpoint} ${m.fstype} ${m.options.join(",")}`;
}

type TmpFacts = Pick<Facts, "tmp" | "apt">;

export function checkTmp({ tmp, apt }: TmpFacts): Finding[] {
  const out: Finding[] = [];
  const t = need(tmp, C.live_options, out);
  let noexecWanted = false;
  if (t) {
    for (const p of tmp.status === "ok" ? tmp.problems : []) {
      out.push((p.source.startsWith("/proc/") ? C.live_options : C.persistent_options).error(p));
    }
    if (liveMountsRead(tmp)) {
      if (!t.live) {
        out.push(
          C.live_options.fail(
            {
              source: "/proc/self/mounts",
              excerpt: "no mount on /tmp: it is part of the root filesystem, exec allowed",
            },
            { detail: "/tmp is not a separate mount, so programs can run from it" },
          ),
        );
      } else {
        const miss = missing(t.live.options);
        noexecWanted ||= t.live.options.includes("noexec");
        out.push(
          C.live_options.verdict(
            miss.length === 0,
            { source: `/proc/self/mounts line ${t.live.line}`, excerpt: describeMount(t.live) },
            miss.length ? { detail: `/tmp is mounted without ${miss.join(",")}` } : undefined,
          ),
        );
      }
    }
    // fstab wins over tmp.mount: systemd's fstab generator replaces the unit.
    if (t.fstab) {
      const miss = missing(t.fstab.options);
      noexecWanted ||= t.fstab.options.includes("noexec");
      out.push(
        C.persistent_options.verdict(
          miss.length === 0,
          { source: `/etc/fstab line ${t.fstab.line}`, excerpt: describeMount(t.fstab) },
          miss.length ? { detail: `/etc/fstab mounts /tmp without ${miss.join(",")}` } : undefined,
        ),
      );
    } else if (t.tmpMount?.enabled) {
      const miss = missing(t.tmpMount.options);
      noexecWanted ||= t.tmpMount.options.includes("noexec");
      out.push(
        C.persistent_options.verdict(
          miss.length === 0,
          { source: t.tmpMount.sources.join(", "), excerpt: `Options=${t.tmpMount.options.join(",")}` },
          miss.length ? { detail: `tmp.mount mounts /tmp without ${miss.join(",")}` } : undefined,
        ),
      );
    } else {
      out.push(
        C.persistent_options.fail(
          {
            source: "/etc/fstab",
            excerpt: t.tmpMount
              ? `no /tmp entry; ${t.tmpMount.path} exists but is not enabled`
              : "no /tmp entry and no tmp.mount unit",
          },
          { detail: "Nothing mounts /tmp noexec at boot" },
        ),
      );
    }
  }
  const a = need(apt, C.apt_tempdir, out);
  if (a) {
    out.push(...partialProblems(apt, C.apt_tempdir));
    const set = aptSetting(a, "APT::ExtractTemplates::TempDir");
    if (set && !/^\/tmp\/?$/.test(set.value)) {
      out.push(
        C.apt_tempdir.pass({
          source: `${set.source} line ${set.line}`,
          excerpt: `APT::ExtractTemplates::TempDir "${set.value}"`,
        }),
      );
    } else {
      const excerpt = set
        ? `APT::ExtractTemplates::TempDir "${set.value}" (${set.source} line ${set.line})`
        : `APT::ExtractTemplates::TempDir not set in ${a.files.length} apt config files`;
      // Only a real breakage once /tmp is noexec; before that it is advice.
      out.push(
        noexecWanted
          ? C.apt_tempdir.fail(
              { source: "/etc/apt/apt.conf.d", excerpt },
              { detail: "/tmp is noexec but apt still extracts templates there: package upgrades will fail" },
            )
          : C.apt_tempdir.warn({ source: "/etc/apt/apt.conf.d", excerpt }),
      );
    }
  }
  return out;
}

export const tmpLayer = defineLayer({
  layer: "tmp",
  needs: ["tmp", "apt"],
  check: checkTmp,
});
