import { aptSetting, type AptSetting } from "../facts/aptconf.js";
import type { Facts } from "../facts/keys.js";
import { installedVersion } from "../facts/packages.js";
import { UNATTENDED_LOG } from "../facts/updates.js";
import { catalog, need, partialProblems } from "./catalog.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";

const DAY = 86_400_000;
const STALE_AFTER_DAYS = 3;

const C = catalog("updates", {
  installed: {
    severity: "high",
    title: "unattended-upgrades is installed",
    remediation: "apt-get install -y unattended-upgrades",
    fixable: true,
  },
  enabled: {
    severity: "high",
    title: "Unattended upgrades are enabled (package lists and upgrades run daily)",
    remediation:
      'printf \'APT::Periodic::Update-Package-Lists "1";\\nAPT::Periodic::Unattended-Upgrade "1";\\n\' > /etc/apt/apt.conf.d/20auto-upgrades',
    fixable: true,
  },
  security_origins: {
    severity: "high",
    title: "Security updates are among the origins unattended-upgrades installs from",
    remediation:
      'add "origin=Debian,codename=${distro_codename},label=Debian-Security"; to Unattended-Upgrade::Origins-Pattern in /etc/apt/apt.conf.d/50unattended-upgrades',
    fixable: true,
  },
  timer: {
    severity: "medium",
    title: "apt-daily-upgrade.timer runs at boot",
    remediation: "systemctl enable --now apt-daily.timer apt-daily-upgrade.timer",
    fixable: true,
  },
  last_run: {
    severity: "low",
    title: `Unattended upgrades ran in the last ${STALE_AFTER_DAYS} days`,
    remediation: "unattended-upgrade -d   # run once by hand and read why it does not run on its own",
    fixable: false,
  },
});

type UpdatesFacts = Pick<Facts, "packages" | "apt" | "updates">;

function periodic(s: AptSetting | undefined): boolean {
  // Values are days ("1"), "always", or a duration ("1d"); "0" or nothing means off.
  if (!s) return false;
  const v = s.value.trim().toLowerCase();
  return v === "always" || /^[1-9]\d*[smhd]?$/.test(v);
}

function where(s: AptSetting | undefined, key: string): string {
  return s ? `${key} "${s.value}" (${s.source} line ${s.line})` : `${key} not set`;
}

export function checkUpdates({ packages, apt, updates }: UpdatesFacts): Finding[] {
  const out: Finding[] = [];
  const pk = need(packages, C.installed, out);
  if (!pk) return out;
  const version = installedVersion(pk, "unattended-upgrades");
  out.push(
    C.installed.verdict(version !== undefined, {
      source: "/var/lib/dpkg/status",
      excerpt: version ? `unattended-upgrades ${version} installed` : "unattended-upgrades not installed",
    }),
  );
  const a = need(apt, C.enabled, out);
  if (a) {
    out.push(...partialProblems(apt, C.enabled));
    const lists = aptSetting(a, "APT::Periodic::Update-Package-Lists");
    const upgrade = aptSetting(a, "APT::Periodic::Unattended-Upgrade");
    const on = periodic(lists) && periodic(upgrade);
    out.push(
      C.enabled.verdict(
        on && version !== undefined,
        {
          source: upgrade?.source ?? lists?.source ?? "/etc/apt/apt.conf.d",
          excerpt: `${where(lists, "APT::Periodic::Update-Package-Lists")}; ${where(upgrade, "APT::Periodic::Unattended-Upgrade")}`,
        },
        version === undefined && on
          ? { title: "APT::Periodic asks for unattended upgrades but the package is not installed" }
          : undefined,
      ),
    );
    const origins = [
      aptSetting(a, "Unattended-Upgrade::Origins-Pattern"),
      aptSetting(a, "Unattended-Upgrade::Allowed-Origins"),
    ].filter((s): s is AptSetting => s !== undefined);
    const security = origins.flatMap((s) => s.value.split("\n")).filter((o) => /security/i.test(o));
    if (version === undefined && origins.length === 0) {
      out.push(C.security_origins.skip("unattended-upgrades is not installed"));
    } else {
      out.push(
        C.security_origins.verdict(security.length > 0, {
          source: origins.map((s) => s.source).join(", ") || "/etc/apt/apt.conf.d",
          excerpt: security.length
            ? security.join("; ")
            : "no Origins-Pattern or Allowed-Origins entry mentions security",
        }),
      );
    }
  }
  const u = need(updates, C.last_run, out);
  if (u) {
    out.push(
      C.timer.verdict(u.timerEnabled, {
        source: "/etc/systemd/system/timers.target.wants",
        excerpt: u.timerEnabled ? "apt-daily-upgrade.timer enabled" : "apt-daily-upgrade.timer not enabled",
      }),
    );
    if (version === undefined)
      out.push(C.last_run.skip("unattended-upgrades is not installed", UNATTENDED_LOG));
    else if (!u.lastRun)
      out.push(C.last_run.warn({ source: UNATTENDED_LOG, excerpt: "no log: it has never run" }));
    else {
      const days = (u.now - u.lastRun.at) / DAY;
      const ev = {
        source: UNATTENDED_LOG,
        excerpt: `last line (${days.toFixed(1)} days ago): ${u.lastRun.line}`,
      };
      out.push(days <= STALE_AFTER_DAYS ? C.last_run.pass(ev) : C.last_run.warn(ev));
    }
  }
  return out;
}

export const updatesLayer = defineLayer({
  layer: "updates",
  needs: ["packages", "apt", "updates"],
  check: checkUpdates,
});
