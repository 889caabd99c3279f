import type { Fact } from "../facts/fact.js";
import {
  F2B_WANTS,
  jailOption,
  parseFail2banTime,
  type Fail2banFact,
  type JailOption,
} from "../facts/fail2ban.js";
import type { Facts } from "../facts/keys.js";
import { installedVersion, isInstalled, type PackagesFact } from "../facts/packages.js";
import { entry } from "../facts/record.js";
import type { SshdFact } from "../facts/sshd.js";
import { catalog, need, partialProblems } from "./catalog.js";
import type { Evidence, Finding } from "./finding.js";
import { defineLayer } from "./layer.js";

const JAIL_FILE = "/etc/fail2ban/jail.d/clawguard-sshd.local";
const MIN_BANTIME = 3600;
const MIN_FINDTIME = 600;
const MAX_RETRY = 5;
const LOG_BACKENDS = new Set(["auto", "polling", "pyinotify", "gamin"]);

/** The jail clawguard recommends: the journal as its log, sshd's real ports, hour-long bans. */
function jailText(ports: number[]): string {
  const port = ports.length ? ports.join(",") : "ssh";
  return `[sshd]\\nenabled = true\\nbackend = systemd\\nport = ${port}\\nbantime = 1h\\nfindtime = 10m\\nmaxretry = 5\\n`;
}

/**
 * One setting in a file of its own: jail.d/*.local is read after jail.local, so it wins
 * whatever the other files say, and it never rewrites a file the operator keeps.
 */
function setJail(key: string, value: string): string {
  return `printf '[sshd]\\n${key} = ${value}\\n' > /etc/fail2ban/jail.d/clawguard-${key}.local && systemctl restart fail2ban`;
}

function writeJail(ports: number[]): string {
  return `apt-get install -y python3-systemd && printf '${jailText(ports)}' > ${JAIL_FILE} && systemctl restart fail2ban`;
}

const C = catalog("fail2ban", {
  installed: {
    severity: "high",
    title: "fail2ban is installed",
    remediation: "apt-get install -y fail2ban python3-systemd",
    fixable: true,
  },
  enabled: {
    severity: "high",
    title: "fail2ban starts at boot",
    remediation: "systemctl enable --now fail2ban",
    fixable: true,
  },
  running: {
    severity: "high",
    title: "fail2ban is running",
    remediation:
      "systemctl restart fail2ban; journalctl -u fail2ban -n 20   # its last error names the jail and the file to fix",
    fixable: false,
  },
  sshd_jail: {
    severity: "high",
    title: "An sshd jail is enabled",
    remediation: writeJail([22]),
    fixable: true,
  },
  backend: {
    severity: "critical",
    title: "The sshd jail's backend can read sshd's log on this system",
    remediation: writeJail([22]),
    fixable: true,
  },
  port: {
    severity: "high",
    title: "The sshd jail bans on sshd's real port",
    remediation: setJail("port", "22"),
    fixable: true,
  },
  bantime: {
    severity: "medium",
    title: `Bans last at least ${MIN_BANTIME / 3600}h`,
    remediation: setJail("bantime", "1h"),
    fixable: true,
  },
  findtime: {
    severity: "low",
    title: `Failures are counted over at least ${MIN_FINDTIME / 60} minutes`,
    remediation: setJail("findtime", "10m"),
    fixable: true,
  },
  maxretry: {
    severity: "medium",
    title: `fail2ban bans after at most ${MAX_RETRY} failures`,
    remediation: setJail("maxretry", "5"),
    fixable: true,
  },
});

type Fail2banFacts = Pick<Facts, "packages" | "fail2ban" | "sshd">;

function ev(o: JailOption, key: string): Evidence {
  const inherited = o.section === "DEFAULT" ? " (from [DEFAULT])" : "";
  const shown = o.raw === o.value ? o.value : `${o.raw} -> ${o.value.replace(/\n/g, " ")}`;
  return { source: `${o.source} line ${o.line}`, excerpt: `${key} = ${shown}${inherited}` };
}

function isTrue(v: string | undefined): boolean {
  return /^(true|yes|1|on)$/i.test((v ?? "").trim());
}

/** Jail `port` as numbers and ranges: `ssh`, `22,2222`, `ssh,sftp`, `1000:2000`. */
function jailPorts(
  value: string,
  services: Record<string, number>,
): { ranges: Array<[number, number]>; unknown: string[] } {
  const ranges: Array<[number, number]> = [];
  const unknown: string[] = [];
  for (const part of value.split(/[,\s]+/).filter(Boolean)) {
    const [a, b] = part.split(":");
    const num = (s: string) => (/^\d+$/.test(s) ? Number(s) : entry(services, s.toLowerCase()));
    const lo = num(a!);
    const hi = b === undefined ? lo : num(b);
    if (lo === undefined || hi === undefined) unknown.push(part);
    else ranges.push([lo, hi]);
  }
  return { ranges, unknown };
}

export function checkFail2ban(f: Fail2banFacts): Finding[] {
  const out: Finding[] = [];
  const pkgs = need(f.packages, C.installed, out);
  const installed = pkgs ? isInstalled(pkgs, "fail2ban") : false;
  if (pkgs)
    out.push(
      C.installed.verdict(installed, {
        source: "/var/lib/dpkg/status",
        excerpt: installed
          ? `fail2ban ${installedVersion(pkgs, "fail2ban")} install ok installed`
          : "package fail2ban is not installed",
      }),
    );
  const rest = [C.enabled, C.running, C.sshd_jail, C.backend, C.port, C.bantime, C.findtime, C.maxretry];
  if (pkgs && !installed) {
    for (const m of rest) out.push(m.skip("fail2ban is not installed", "/var/lib/dpkg/status"));
    return out;
  }
  const j = need(f.fail2ban, C.sshd_jail, out);
  if (!j) return out;
  out.push(...partialProblems(f.fail2ban, C.sshd_jail));

  if (j.liveEnabled !== undefined)
    out.push(
      C.enabled.verdict(j.liveEnabled === "enabled", {
        source: "systemctl is-enabled fail2ban.service",
        excerpt: `${j.liveEnabled}${j.liveActive ? `; is-active: ${j.liveActive}` : ""}`,
      }),
    );
  else
    out.push(
      C.enabled.verdict(j.wantsLink, {
        source: F2B_WANTS,
        excerpt: j.wantsLink ? "wants link present" : "no wants link: fail2ban does not start at boot",
      }),
    );

  if (j.liveActive === undefined)
    out.push(
      C.running.skip(
        "whether a service runs is only known on the live system (audit / as root)",
        "systemctl is-active",
      ),
    );
  else
    out.push(
      C.running.verdict(
        j.liveActive === "active",
        { source: "systemctl is-active fail2ban.service", excerpt: j.liveActive },
        { detail: j.liveActive === "active" ? undefined : `fail2ban is not running (${j.liveActive})` },
      ),
    );

  const sshPorts = f.sshd.status === "ok" ? f.sshd.value.ports : [];
  const enabled = jailOption(j.ini, "sshd", "enabled");
  const jailOn = !!entry(j.ini, "sshd") && isTrue(enabled?.value);
  out.push(
    C.sshd_jail.verdict(
      jailOn,
      enabled
        ? ev(enabled, "enabled")
        : { source: j.files.join(", ") || "/etc/fail2ban", excerpt: "no [sshd] jail" },
      { remediation: writeJail(sshPorts) },
    ),
  );
  if (!jailOn) {
    for (const m of [C.backend, C.port, C.bantime, C.findtime, C.maxretry])
      out.push(
        m.skip(
          "the sshd jail is not enabled",
          enabled ? `${enabled.source} line ${enabled.line}` : "/etc/fail2ban",
        ),
      );
    return out;
  }

  out.push(checkBackend(j, pkgs, sshPorts));
  out.push(checkPort(j, f.sshd, sshPorts));
  out.push(
    timeFinding(j, "bantime", (s) => s < 0 || s >= MIN_BANTIME, C.bantime),
    timeFinding(j, "findtime", (s) => s >= MIN_FINDTIME, C.findtime),
  );
  const retry = jailOption(j.ini, "sshd", "maxretry");
  if (!retry)
    out.push(
      C.maxretry.warn({ source: "/etc/fail2ban/jail.conf", excerpt: "maxretry not set (fail2ban uses 3)" }),
    );
  else {
    const n = Number(retry.value);
    if (!Number.isInteger(n))
      out.push(
        C.maxretry.error({
          kind: "malformed",
          source: retry.source,
          line: retry.line,
          message: `maxretry = ${retry.value} is not a whole number`,
        }),
      );
    else out.push(C.maxretry.verdict(n > 0 && n <= MAX_RETRY, ev(retry, "maxretry")));
  }
  return out;
}

function timeFinding(
  j: Fail2banFact,
  key: "bantime" | "findtime",
  good: (s: number) => boolean,
  maker: typeof C.bantime,
): Finding {
  const o = jailOption(j.ini, "sshd", key);
  if (!o)
    return maker.fail({ source: "/etc/fail2ban/jail.conf", excerpt: `${key} not set (fail2ban uses 10m)` });
  const secs = parseFail2banTime(o.value);
  if (secs === null)
    return maker.error({
      kind: "malformed",
      source: o.source,
      line: o.line,
      message: `${key} = ${o.value} is not a fail2ban time (600, 10m, 1h, 1d, -1)`,
    });
  return maker.verdict(good(secs), ev(o, key));
}

function checkBackend(j: Fail2banFact, pkgs: PackagesFact | null, sshPorts: number[]): Finding {
  const o = jailOption(j.ini, "sshd", "backend");
  const backend = (o?.value ?? "auto").split("[")[0]!.trim().toLowerCase();
  const base = o
    ? ev(o, "backend")
    : { source: "/etc/fail2ban/jail.conf", excerpt: "backend not set (auto)" };
  const remediation = writeJail(sshPorts);
  if (backend === "systemd") {
    const py = pkgs ? isInstalled(pkgs, "python3-systemd") : false;
    if (!py || !j.journald)
      return C.backend.fail(
        {
          ...base,
          excerpt: `${base.excerpt}; ${!py ? "python3-systemd is not installed" : "no systemd-journald on this system"}`,
        },
        {
          detail: "The sshd jail reads the journal but fail2ban cannot: the jail will not start",
          remediation: py
            ? "use backend = auto with a logpath that exists"
            : "apt-get install -y python3-systemd && systemctl restart fail2ban",
        },
      );
    return C.backend.pass({
      ...base,
      excerpt: `${base.excerpt}; python3-systemd installed, journald present`,
    });
  }
  if (LOG_BACKENDS.has(backend)) {
    const lp = jailOption(j.ini, "sshd", "logpath");
    const where = lp ? ev(lp, "logpath") : { source: "/etc/fail2ban/jail.conf", excerpt: "no logpath" };
    const found = j.sshdLogs.flatMap((l) => l.found);
    const wanted = j.sshdLogs.map((l) => l.pattern).join(", ") || "nothing";
    if (found.length === 0) {
      const rsyslog =
        pkgs && isInstalled(pkgs, "rsyslog")
          ? "rsyslog is installed but has not written it"
          : "rsyslog is not installed (Debian 12's default), so nothing writes it";
      return C.backend.fail(
        {
          source: where.source,
          excerpt: `${base.excerpt} (${base.source}); ${where.excerpt}; ${wanted} does not exist: ${rsyslog}`,
        },
        {
          detail: `The sshd jail cannot start: fail2ban exits with "Have not found any log file for sshd jail" (${wanted} is missing)`,
          remediation,
        },
      );
    }
    return C.backend.pass({
      source: where.source,
      excerpt: `backend = ${backend}; ${found.join(", ")} exists`,
    });
  }
  return C.backend.warn(base, {
    detail: `The sshd jail uses backend "${backend}", which clawguard cannot verify`,
    severity: "medium",
  });
}

function checkPort(j: Fail2banFact, sshd: Fact<SshdFact>, sshPorts: number[]): Finding {
  if (sshd.status !== "ok")
    return C.port.skip(sshd.status === "skip" ? sshd.reason : "sshd's settings could not be read", "sshd");
  const o = jailOption(j.ini, "sshd", "port");
  if (!o)
    return C.port.warn({ source: "/etc/fail2ban/jail.conf", excerpt: "port not set: bans cover every port" });
  const { ranges, unknown } = jailPorts(o.value, j.services);
  const missing = sshPorts.filter((p) => !ranges.some(([lo, hi]) => lo <= p && p <= hi));
  const excerpt = `${ev(o, "port").excerpt} = ${ranges.map(([a, b]) => (a === b ? a : `${a}:${b}`)).join(",") || "?"}${
    unknown.length ? ` (unknown service ${unknown.join(", ")})` : ""
  }; sshd listens on ${sshPorts.join(", ")}`;
  if (missing.length === 0) return C.port.pass({ source: `${o.source} line ${o.line}`, excerpt });
  return C.port.fail(
    { source: `${o.source} line ${o.line}`, excerpt },
    {
      detail: `The sshd jail bans port ${o.value} but sshd listens on ${missing.join(", ")}: attackers are never blocked`,
      remediation: setJail("port", sshPorts.join(",")),
    },
  );
}

export const fail2banLayer = defineLayer({
  layer: "fail2ban",
  needs: ["packages", "fail2ban", "sshd"],
  check: checkFail2ban,
});
