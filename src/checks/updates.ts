import { aptSetting, type AptSetting } from "../facts/aptconf.js";
import { securityRepoFor, securitySources, SOURCES_DIR, SOURCES_LIST } from "../facts/apt-sources.js";
import type { Facts } from "../facts/keys.js";
import { installedVersion } from "../facts/packages.js";
import { NEEDRESTART_CONF, UNATTENDED_LOG } from "../facts/updates.js";
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
  security_repo: {
    severity: "high",
    title:
      "apt fetches the distribution's security suite, so unattended upgrades have security fixes to install",
    remediation: `echo 'deb http://security.debian.org/debian-security bookworm-security main' > ${SOURCES_DIR}/security.list   # your release's codename`,
    fixable: true,
  },
  needrestart: {
    severity: "medium",
    title: "needrestart restarts services after upgrades, so no running service keeps an unpatched library",
    remediation: `apt-get install -y needrestart && echo "\\$nrconf{restart} = 'a';" > /etc/needrestart/conf.d/50-autorestart.conf`,
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
    title: `Unattended upgrades have run in the last ${STALE_AFTER_DAYS} days`,
    remediation: "unattended-upgrade -d   # run once by hand and read why it does not run on its own",
    fixable: false,
  },
});

type UpdatesFacts = Pick<Facts, "packages" | "apt" | "updates" | "aptSources">;

function periodic(s: AptSetting | undefined): boolean {
  // Values are days ("1"), "always", or a duration ("1d"); "0" or nothing means off.
  if (!s) return false;
  const v = s.value.trim().toLowerCase();
  return v === "always" || /^[1-9]\d*[smhd]?$/.test(v);
}

function where(s: AptSetting | undefined, key: string): string {
  return s ? `${key} "${s.value}" (${s.source} line ${s.line})` : `${key} not set`;
}

function checkSecurityRepo(sources: UpdatesFacts["aptSources"], out: Finding[]): void {
  const f = need(sources, C.security_repo, out);
  if (!f) return;
  out.push(...partialProblems(sources, C.security_repo));
  const found = securitySources(f);
  if (found.length > 0) {
    out.push(
      C.security_repo.pass({
        source: `${found[0]!.source} line ${found[0]!.line}`,
        excerpt: found.map((s) => `${s.uris.join(" ")} ${s.suites.join(" ")}`).join("; "),
      }),
    );
    return;
  }
  const repo = securityRepoFor(f);
  const excerpt = `no enabled deb entry for a security suite in ${f.files.join(", ") || SOURCES_LIST}`;
  out.push(
    C.security_repo.fail(
      { source: f.files[0] ?? SOURCES_LIST, excerpt },
      repo
        ? {
            remediation: `echo 'deb ${repo.uri} ${repo.suite} ${repo.components.join(" ")}' > ${SOURCES_DIR}/security.list`,
          }
        : {
            remediation: `add your distribution's security repository to ${SOURCES_DIR} (harden cannot tell which release this is)`,
          },
    ),
  );
}

function checkNeedrestart(version: string | undefined, u: UpdatesFacts["updates"], out: Finding[]): void {
  if (version === undefined) {
    out.push(
      C.needrestart.fail({
        source: "/var/lib/dpkg/status",
        excerpt: "needrestart not installed: services keep old libraries loaded after an upgrade",
      }),
    );
    return;
  }
  const f = need(u, C.needrestart, out);
  if (!f) return;
  const mode = f.needrestartMode;
  out.push(
    C.needrestart.verdict(
      mode?.value === "a",
      mode
        ? {
            source: `${mode.source} line ${mode.line}`,
            excerpt: `needrestart ${version}, $nrconf{restart} = '${mode.value}'`,
          }
        : {
            source: NEEDRESTART_CONF,
            excerpt: `needrestart ${version}, $nrconf{restart} not set: it asks, and unattended nobody answers`,
          },
      mode?.value === "a"
        ? undefined
        : { detail: "needrestart does not restart services by itself after upgrades" },
    ),
  );
}

export function checkUpdates({ packages, apt, updates, aptSources }: UpdatesFacts): Finding[] {
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
          ? { detail: "APT::Periodic asks for unattended upgrades but the package is not installed" }
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
  checkSecurityRepo(aptSources, out);
  checkNeedrestart(installedVersion(pk, "needrestart"), updates, out);
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
  needs: ["packages", "apt", "updates", "aptSources"],
  check: checkUpdates,
});
