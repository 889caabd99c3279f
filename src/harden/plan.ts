import type { Finding, Layer } from "../checks/finding.js";
import { isInstalled } from "../facts/packages.js";
import { entry } from "../facts/record.js";
import { renderAutoUpgrades, renderSecurityOrigins } from "../render/apt.js";
import { chooseJailBackend, renderJailLocal } from "../render/jail.js";
import { renderSshdDropIn, SSHD_DROP_IN } from "../render/sshd.js";
import { planLoginNotices } from "./plan-banner.js";
import { planSshCa } from "./plan-ssh-ca.js";
import { knownLoginUsers, SSHD_LIMITS } from "../checks/ssh-session.js";
import { APT_TEMPDIR, fstabWithTmp, renderAptTempDir, renderTmpMountDropIn } from "../render/tmp.js";
import { renderUfwCommands, ufwDefaultsWithIpv6 } from "../render/ufw.js";
import type { Change } from "../change/change.js";
import type { PlanFacts } from "./facts.js";
import { planHomeUmask, planKernel, planNeedrestart, planSecurityRepo } from "./plan-host.js";
import { planOpenClaw } from "./plan-openclaw.js";
import type { Profile } from "./profile.js";

export interface PlanInput {
  profile: Profile;
  /** The audit just run on the same facts. */
  findings: Finding[];
  facts: PlanFacts;
}

/** A layer that needs fixing but cannot be fixed safely, and why. */
export interface Blocked {
  layer: Layer;
  reason: string;
}

export interface Plan {
  changes: Change[];
  /** Commands left out because the root is not the running system. */
  deferred: Change[];
  blocked: Blocked[];
}

/** The order of value, and of safety: nothing here can lock the operator out before SSH is allowed. */
export const PLAN_ORDER: Layer[] = [
  "tmp",
  "credentials",
  "firewall",
  "fail2ban",
  "updates",
  "ssh",
  "kernel",
  "user",
  "systemd",
  "gateway",
];

/** Failing (or warning) fixable findings of a layer, optionally only these keys. */
export function failing(findings: Finding[], layer: Layer, keys?: string[]): string[] {
  return findings
    .filter(
      (f) =>
        f.layer === layer &&
        (f.status === "fail" || f.status === "warn") &&
        f.fixable &&
        (!keys || keys.includes(f.id.slice(layer.length + 1))),
    )
    .map((f) => f.id);
}

export interface LayerPlan {
  changes: Change[];
  blocked?: string;
}

type Planner = (input: PlanInput) => LayerPlan;

const root = { owner: "root", group: "root" };

function planTmp({ findings, facts }: PlanInput): LayerPlan {
  const changes: Change[] = [];
  const persistent = failing(findings, "tmp", ["persistent_options"]);
  const live = failing(findings, "tmp", ["live_options"]);
  const apt = failing(findings, "tmp", ["apt_tempdir"]);
  if (!persistent.length && !live.length && !apt.length) return { changes };
  if (facts.tmp.status !== "ok") return { changes, blocked: "the mount table could not be read" };
  const t = facts.tmp.value;
  // apt first: from the moment /tmp is noexec, package upgrades need the other template dir.
  if (apt.length || persistent.length || live.length) {
    if (!facts.files.get(APT_TEMPDIR)?.stat)
      changes.push({ kind: "mkdir", path: APT_TEMPDIR, mode: 0o755, ...root, fixes: apt });
    changes.push({
      kind: "file",
      path: "/etc/apt/apt.conf.d/50clawguard-tmp",
      content: renderAptTempDir(),
      mode: 0o644,
      ...root,
      fixes: apt,
    });
  }
  if (persistent.length) {
    if (!t.fstab && t.tmpMount?.enabled) {
      const path = "/etc/systemd/system/tmp.mount.d/clawguard.conf";
      if (!facts.files.get("/etc/systemd/system/tmp.mount.d")?.stat && !facts.files.get(path)?.stat)
        changes.push({
          kind: "mkdir",
          path: "/etc/systemd/system/tmp.mount.d",
          mode: 0o755,
          ...root,
          fixes: [],
        });
      changes.push({
        kind: "file",
        path,
        content: renderTmpMountDropIn(t.tmpMount.options),
        mode: 0o644,
        ...root,
        fixes: persistent,
      });
      changes.push({
        kind: "command",
        argv: ["systemctl", "daemon-reload"],
        refresh: true,
        onlyIf: [path],
        live: true,
        fixes: [],
      });
    } else {
      const now = facts.files.get("/etc/fstab");
      changes.push({
        kind: "file",
        path: "/etc/fstab",
        content: fstabWithTmp(now?.text ?? ""),
        mode: now?.stat?.mode ?? 0o644,
        ...root,
        fixes: persistent,
      });
    }
  }
  if (live.length) {
    if (t.live) {
      changes.push({
        kind: "command",
        argv: ["mount", "-o", "remount,noexec,nosuid,nodev", "/tmp"],
        undo: ["mount", "-o", `remount,${t.live.options.join(",")}`, "/tmp"],
        live: true,
        fixes: live,
      });
    } else {
      changes.push({
        kind: "command",
        argv: ["mount", "/tmp"],
        undo: ["umount", "--lazy", "/tmp"],
        live: true,
        fixes: live,
        note: "a new, empty /tmp is mounted over the old one: files there stay open for programs using them, and come back after rollback or reboot",
      });
    }
  }
  return { changes };
}

function sshPorts(input: PlanInput): number[] | null {
  const s = input.facts.sshd;
  if (s.status === "ok" && s.value.ports.length > 0) return s.value.ports;
  return null;
}

function planFirewall(input: PlanInput): LayerPlan {
  const { findings, facts, profile } = input;
  const ids = failing(findings, "firewall");
  if (!ids.length) return { changes: [] };
  const ports = sshPorts(input);
  // Fail closed: a firewall enabled without knowing SSH's port can cut the operator off.
  if (!ports)
    return {
      changes: [],
      blocked: "sshd's real ports are unknown, so enabling a firewall could lock you out",
    };
  const changes: Change[] = [];
  const installed = facts.packages.status === "ok" && isInstalled(facts.packages.value, "ufw");
  if (!installed)
    changes.push({ kind: "package", names: ["ufw"], fixes: failing(findings, "firewall", ["installed"]) });
  const ufw = facts.ufw.status === "ok" ? facts.ufw.value : undefined;
  const policy = ufw && entry(ufw.defaults, "DEFAULT_INPUT_POLICY")?.value.toUpperCase();
  const wasEnabled = !!ufw && entry(ufw.conf, "ENABLED")?.value.toLowerCase() === "yes";
  const rules = [...(ufw?.v4?.rules ?? []), ...(ufw?.v6?.rules ?? [])].filter(
    (r) => r.action === "allow" && r.direction === "in" && !r.route,
  );
  const existing = [...new Set(rules.map((r) => (r.proto === "any" ? r.dport : `${r.dport}/${r.proto}`)))];
  const gatewayPorts = new Set([profile.gatewayPort]);
  if (facts.openclaw.status === "ok") for (const i of facts.openclaw.value.installs) gatewayPorts.add(i.port);
  // Opening a gateway port closes nothing: delete those rules before the default changes.
  for (const rule of existing) {
    const port = Number(rule.split("/")[0]);
    if (gatewayPorts.has(port)) {
      changes.push({
        kind: "command",
        argv: ["ufw", "delete", "allow", rule],
        undo: ["ufw", "allow", rule],
        live: true,
        fixes: failing(findings, "firewall", ["gateway_port_closed", "allowed_ports"]),
      });
    }
  }
  const defaults = facts.files.get("/etc/default/ufw");
  if (defaults?.text !== undefined) {
    changes.push({
      kind: "file",
      path: "/etc/default/ufw",
      content: ufwDefaultsWithIpv6(defaults.text),
      mode: defaults.stat?.mode ?? 0o644,
      ...root,
      fixes: failing(findings, "firewall", ["ipv6"]),
    });
  }
  const cmds = renderUfwCommands({
    sshPorts: ports,
    ports: profile.ports,
    gatewayPort: profile.gatewayPort,
    previousIncoming: policy === "DROP" ? "deny" : policy === "REJECT" ? "reject" : "allow",
    wasEnabled,
    existing: existing.filter((r) => !gatewayPorts.has(Number(r.split("/")[0]))),
  });
  for (const c of cmds) {
    const enable = c.argv.includes("enable");
    changes.push({
      kind: "command",
      ...c,
      live: true,
      fixes: enable
        ? failing(findings, "firewall", ["enabled", "live_ruleset"])
        : c.argv.includes("default")
          ? failing(findings, "firewall", ["default_incoming"])
          : failing(findings, "firewall", ["ssh_allowed", "allowed_ports"]),
    });
  }
  if (wasEnabled)
    changes.push({
      kind: "command",
      argv: ["ufw", "reload"],
      refresh: true,
      onlyIf: ["/etc/default/ufw"],
      live: true,
      fixes: failing(findings, "firewall", ["ipv6", "live_ruleset"]),
    });
  return { changes };
}

function planFail2ban(input: PlanInput): LayerPlan {
  const { findings, facts } = input;
  const ids = failing(findings, "fail2ban");
  const audited = findings.some((f) => f.layer === "fail2ban");
  const pk = facts.packages.status === "ok" ? facts.packages.value : undefined;
  // Without a fail2ban layer in the audit, harden still sets up the jail it would demand.
  if (audited && !ids.length) return { changes: [] };
  const ports = sshPorts(input);
  if (!ports)
    return { changes: [], blocked: "sshd's real ports are unknown, so a jail would watch the wrong port" };
  const backend = chooseJailBackend(facts.logs);
  const names = ["fail2ban", ...(backend.kind === "systemd" ? ["python3-systemd"] : [])].filter(
    (n) => !pk || !isInstalled(pk, n),
  );
  const changes: Change[] = [];
  if (names.length) changes.push({ kind: "package", names, fixes: ids });
  const path = "/etc/fail2ban/jail.d/clawguard.local";
  changes.push({
    kind: "file",
    path,
    content: renderJailLocal({ sshPorts: ports, backend }),
    mode: 0o644,
    ...root,
    fixes: ids,
    note: "a jail.d file is read after jail.conf and jail.local, so these settings win without editing yours",
  });
  if (!facts.files.get("/etc/systemd/system/multi-user.target.wants/fail2ban.service")?.stat)
    changes.push({
      kind: "command",
      argv: ["systemctl", "enable", "fail2ban.service"],
      undo: ["systemctl", "disable", "fail2ban.service"],
      fixes: ids,
      live: true,
    });
  changes.push({
    kind: "command",
    argv: ["systemctl", "restart", "fail2ban.service"],
    refresh: true,
    onlyIf: [path],
    live: true,
    fixes: ids,
  });
  return { changes };
}

function planUpdates(input: PlanInput): LayerPlan {
  const { findings, facts } = input;
  const changes: Change[] = [];
  const installed = failing(findings, "updates", ["installed"]);
  const enabled = failing(findings, "updates", ["enabled"]);
  const origins = failing(findings, "updates", ["security_origins"]);
  const timer = failing(findings, "updates", ["timer"]);
  const pk = facts.packages.status === "ok" ? facts.packages.value : undefined;
  if (installed.length && !(pk && isInstalled(pk, "unattended-upgrades")))
    changes.push({ kind: "package", names: ["unattended-upgrades"], fixes: installed });
  if (enabled.length || installed.length)
    changes.push({
      kind: "file",
      path: "/etc/apt/apt.conf.d/20auto-upgrades",
      content: renderAutoUpgrades(),
      mode: 0o644,
      ...root,
      fixes: enabled,
    });
  if (origins.length || installed.length)
    changes.push({
      kind: "file",
      path: "/etc/apt/apt.conf.d/52clawguard-unattended-upgrades",
      content: renderSecurityOrigins(),
      mode: 0o644,
      ...root,
      fixes: origins,
    });
  if (timer.length)
    changes.push({
      kind: "command",
      argv: ["systemctl", "enable", "--now", "apt-daily.timer", "apt-daily-upgrade.timer"],
      undo: ["systemctl", "disable", "--now", "apt-daily.timer", "apt-daily-upgrade.timer"],
      live: true,
      fixes: timer,
    });
  const repo = planSecurityRepo(input);
  changes.push(...repo.changes, ...planNeedrestart(input).changes);
  return { changes, blocked: repo.blocked };
}

function planSsh({ findings, facts }: PlanInput): LayerPlan {
  const ids = failing(findings, "ssh", [
    "root_login",
    "password_auth",
    "empty_passwords",
    "tcp_forwarding",
    "agent_forwarding",
    "x11_forwarding",
    "max_auth_tries",
    "login_grace_time",
    "client_alive",
    "log_level",
    "compression",
    "allow_users",
    "banner",
  ]);
  if (!ids.length) return { changes: [] };
  if (facts.sshd.status !== "ok") return { changes: [], blocked: "sshd's settings could not be read" };
  const s = facts.sshd.value;
  // A key file that could not be read may hold keys, but "may" is not enough to turn passwords off.
  const keysPresent = s.authorizedKeys.some((k) => k.keys > 0);
  // AllowUsers is judged on sshd as it will be, with passwords off when keys are present.
  const known = knownLoginUsers({
    ...s,
    settings: keysPresent
      ? { ...s.settings, passwordauthentication: [{ value: "no", source: SSHD_DROP_IN }] }
      : s.settings,
  });
  const allowUsers = "users" in known ? known.users : undefined;
  const dirMissing = !facts.files.get("/etc/ssh/sshd_config.d")?.stat && !facts.files.get(SSHD_DROP_IN)?.stat;
  const notices = planLoginNotices(
    facts,
    ids.filter((id) => id === "ssh.banner"),
  );
  const changes: Change[] = [...notices.changes];
  if (dirMissing)
    changes.push({ kind: "mkdir", path: "/etc/ssh/sshd_config.d", mode: 0o755, ...root, fixes: [] });
  changes.push({
    kind: "file",
    path: SSHD_DROP_IN,
    content: renderSshdDropIn({ keysPresent, allowUsers, banner: notices.bannerPath, ...SSHD_LIMITS }),
    mode: 0o644,
    ...root,
    fixes: ids.filter(
      (id) => (keysPresent || id !== "ssh.password_auth") && (allowUsers || id !== "ssh.allow_users"),
    ),
    note:
      [
        keysPresent
          ? undefined
          : "password logins stay on: no account has an authorized_keys file, and turning them off would lock you out",
        "why" in known ? `no AllowUsers: ${known.why}` : undefined,
      ]
        .filter(Boolean)
        .join("; ") || undefined,
  });
  // sshd -t before reload: a drop-in sshd rejects fails the run, and the run is undone.
  changes.push({ kind: "command", argv: ["sshd", "-t"], onlyIf: [SSHD_DROP_IN], live: true, fixes: [] });
  changes.push({
    kind: "command",
    argv: ["systemctl", "reload", "ssh.service"],
    refresh: true,
    onlyIf: [SSHD_DROP_IN],
    live: true,
    fixes: [],
  });
  return { changes };
}

const PLANNERS: Partial<Record<Layer, Planner>> = {
  tmp: planTmp,
  firewall: planFirewall,
  fail2ban: planFail2ban,
  updates: planUpdates,
  ssh: planSsh,
  kernel: planKernel,
};

/**
 * Findings, facts and a profile in; the changes that fix what failed out, in an order that never
 * locks the operator out. Pure: the same input gives the same plan.
 */
export function planHarden(input: PlanInput): Plan {
  const skip = new Set(input.profile.skip);
  const changes: Change[] = [];
  const blocked: Blocked[] = [];
  const openclaw = planOpenClaw(input, skip);
  for (const layer of PLAN_ORDER) {
    if (skip.has(layer)) continue;
    const p = PLANNERS[layer]?.(input) ?? openclaw[layer];
    // The user layer's login.defs default is the host's, planned whether or not a gateway is.
    const extra = layer === "user" ? [planHomeUmask(input)] : [];
    for (const q of [p, ...extra]) {
      if (!q) continue;
      changes.push(...q.changes);
      if (q.blocked) blocked.push({ layer, reason: q.blocked });
    }
    if (!p) continue;
    if (layer === "ssh") changes.push(...planSshCa(input, changes));
  }
  // Starting a unit acts on the running system as a live command does.
  const deferred = input.facts.live
    ? []
    : changes.filter((c) => (c.kind === "command" && c.live) || c.kind === "service");
  const kept = changes.filter((c) => !deferred.includes(c));
  // Packages go first, as one apt transaction: when apt fails, nothing else has been touched.
  const names = [...new Set(kept.flatMap((c) => (c.kind === "package" ? c.names : [])))];
  const fixes = [...new Set(kept.flatMap((c) => (c.kind === "package" ? c.fixes : [])))];
  const packages: Change[] = names.length ? [{ kind: "package", names, fixes }] : [];
  return { changes: [...packages, ...kept.filter((c) => c.kind !== "package")], deferred, blocked };
}
