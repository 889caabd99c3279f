import type { Facts } from "../facts/keys.js";
import type { OpenClawInstall } from "../facts/openclaw.js";
import type { PathStats } from "../facts/stat.js";
import { sudoRulesFor, type SudoersFact } from "../facts/sudoers.js";
import { groupsOf, type PasswdEntry, type UsersFact } from "../facts/users.js";
import { catalog, need, partialProblems, type FindingMaker } from "./catalog.js";
import type { Finding } from "./finding.js";
import { defineLayer } from "./layer.js";
import { checkHomeUmask } from "./user-umask.js";

/** Groups that are root in all but name (sudo, docker) or read what the agent must not (adm logs). */
export const PRIVILEGED_GROUPS = ["sudo", "wheel", "admin", "adm", "docker", "lxd", "disk", "shadow"];

const C = catalog("user", {
  dedicated: {
    severity: "critical",
    title: "The gateway runs as a dedicated non-root user",
    remediation:
      "useradd --system --create-home --home-dir /home/openclaw --shell /usr/sbin/nologin openclaw, move the state dir to it, and set User=openclaw in the unit",
    fixable: true,
  },
  no_sudo: {
    severity: "critical",
    title: "The gateway's user has no sudo rights",
    remediation: "remove or narrow the sudoers lines the evidence lists (visudo / visudo -f FILE)",
    fixable: false,
  },
  privileged_groups: {
    severity: "high",
    title: "The gateway's user is in no privileged group",
    remediation: "gpasswd -d USER GROUP for each privileged group the evidence lists",
    fixable: true,
  },
  login_shell: {
    severity: "medium",
    title: "The gateway's user cannot log in (nologin shell)",
    remediation: "usermod --shell /usr/sbin/nologin USER",
    fixable: true,
  },
  home_owned: {
    severity: "medium",
    title: "The gateway's home and state dir belong to its user",
    remediation: "chown USER: HOME STATE_DIR && chmod 750 HOME && chmod 700 STATE_DIR",
    fixable: true,
  },
});

/**
 * The fix when the gateway runs as root: move it to a user of its own. Taking root's shell or
 * groups away would lock the operator out and leave the gateway as powerful as before.
 */
const OWN_USER = "give the gateway a user of its own (user.dedicated): clawguard harden --apply";

const DEPENDENT: FindingMaker[] = [C.no_sudo, C.privileged_groups, C.login_shell, C.home_owned];

type UserFacts = Pick<Facts, "openclaw" | "users" | "sudoers" | "servicePaths">;

function isLoginShell(shell: string): boolean {
  return !/(^|\/)(nologin|false)$/.test(shell) && shell !== "";
}

function fill(user: string, s: string): string {
  return s.replaceAll("USER", user);
}

function checkInstall(
  i: OpenClawInstall,
  users: UsersFact,
  sudo: SudoersFact | null,
  paths: PathStats,
): Finding[] {
  const out: Finding[] = [];
  const name = i.runsAs;
  const unitSrc = i.unit ? (i.unit.directiveAt.User ?? i.unit.path) : i.stateDir;
  if (!name) {
    out.push(
      C.dedicated.fail({
        source: i.stateDir,
        excerpt: "no unit and no owning user: cannot tell who runs it",
      }),
    );
    for (const m of DEPENDENT) out.push(m.skip("unknown service user"));
    return out;
  }
  if (/^(yes|true|on|1)$/i.test(i.unit?.directives.DynamicUser?.at(-1) ?? "")) {
    // systemd allocates a fresh unprivileged uid per start: dedicated, no sudo, no shell, no home.
    out.push(
      C.dedicated.pass({
        source: i.unit!.directiveAt.DynamicUser ?? i.unit!.path,
        excerpt: `DynamicUser=yes (${name})`,
      }),
    );
    for (const m of DEPENDENT)
      out.push(m.skip("DynamicUser=yes: systemd makes a transient unprivileged user"));
    return out;
  }
  const u: PasswdEntry | undefined = users.users.find((x) => x.name === name);
  if (!u) {
    out.push(
      C.dedicated.fail(
        { source: unitSrc, excerpt: `runs as "${name}", which /etc/passwd does not list` },
        { detail: `The gateway's user "${name}" does not exist` },
      ),
    );
    for (const m of DEPENDENT) out.push(m.skip(`user ${name} not in /etc/passwd`));
    return out;
  }
  const groups = users.groups.filter((g) => g.gid === u.gid || g.members.includes(u.name));
  const rules = sudo ? sudoRulesFor(sudo, u, groups) : [];
  const privileged = groupsOf(users, u).filter((g) => PRIVILEGED_GROUPS.includes(g));
  const login = isLoginShell(u.shell);

  if (u.uid === 0) {
    out.push(
      C.dedicated.fail(
        {
          source: unitSrc,
          excerpt:
            i.unit?.scope === "system" && !i.unit.directiveAt.User
              ? "no User= line, so systemd runs it as root"
              : `runs as ${u.name} (uid 0)`,
        },
        { detail: "The gateway runs as root: a prompt injection owns the server" },
      ),
    );
  } else if (login && (rules.length > 0 || privileged.some((g) => ["sudo", "wheel", "admin"].includes(g)))) {
    out.push(
      C.dedicated.fail(
        { source: unitSrc, excerpt: `runs as ${u.name}, a login user (${u.shell}) with admin rights` },
        { detail: `The gateway runs as ${u.name}, a person's admin account`, severity: "high" },
      ),
    );
  } else {
    out.push(C.dedicated.pass({ source: unitSrc, excerpt: `runs as ${u.name} (uid ${u.uid})` }));
  }

  if (u.uid === 0)
    out.push(
      C.no_sudo.fail(
        { source: "/etc/passwd", excerpt: `${u.name} is uid 0: it needs no sudo` },
        { detail: "The gateway's user is root", remediation: OWN_USER },
      ),
    );
  else if (!sudo) out.push(C.no_sudo.skip("sudoers could not be read: see the error above"));
  else if (rules.length > 0) {
    out.push(
      C.no_sudo.fail(
        {
          source: rules.map((r) => `${r.source}:${r.line}`).join(", "),
          excerpt: rules.map((r) => `${r.who.join(",")} ${r.grants}`).join("; "),
        },
        {
          detail: `${u.name} may use sudo`,
          remediation: `remove or narrow: ${rules.map((r) => `${r.source}:${r.line}`).join(", ")} (edit with visudo)`,
        },
      ),
    );
  } else
    out.push(
      C.no_sudo.pass({
        source: sudo.files.join(", ") || "/etc/sudoers",
        excerpt: `no rule names ${u.name}, its groups or ALL`,
      }),
    );

  out.push(
    C.privileged_groups.verdict(
      privileged.length === 0,
      { source: "/etc/group", excerpt: `${u.name} is in: ${groupsOf(users, u).join(", ") || "(no groups)"}` },
      privileged.length
        ? {
            detail: `${u.name} is in ${privileged.join(", ")}`,
            remediation:
              u.uid === 0 ? OWN_USER : privileged.map((g) => `gpasswd -d ${u.name} ${g}`).join(" && "),
          }
        : undefined,
    ),
  );

  out.push(
    C.login_shell.verdict(
      !login,
      { source: "/etc/passwd", excerpt: `${u.name}:${u.uid}:${u.home}:${u.shell}` },
      login
        ? {
            detail: `${u.name} has a login shell (${u.shell})`,
            remediation: u.uid === 0 ? OWN_USER : fill(u.name, C.login_shell.entry.remediation),
          }
        : undefined,
    ),
  );

  const bad: string[] = [];
  for (const p of [u.home, i.stateDir]) {
    const st = paths.stats[p];
    if (!st) continue;
    if (st.uid !== u.uid) bad.push(`${p} owned by uid ${st.uid}, not ${u.name} (${u.uid})`);
    else if (st.mode & 0o022)
      bad.push(`${p} is writable by others (mode ${st.mode.toString(8).padStart(4, "0")})`);
  }
  const checked = [u.home, i.stateDir].filter((p) => paths.stats[p]);
  for (const p of paths.problems.filter((x) => x.source === u.home || x.source === i.stateDir))
    out.push(C.home_owned.error(p));
  if (checked.length === 0) out.push(C.home_owned.skip(`neither ${u.home} nor ${i.stateDir} exists`));
  else
    out.push(
      C.home_owned.verdict(
        bad.length === 0,
        {
          source: checked.join(", "),
          excerpt: bad.length ? bad.join("; ") : `owned by ${u.name}, not writable by others`,
        },
        bad.length
          ? {
              remediation: `chown ${u.name}: '${u.home}' && chown -R ${u.name}: '${i.stateDir}' && chmod 750 '${u.home}' && chmod 700 '${i.stateDir}'`,
            }
          : undefined,
      ),
    );
  return out;
}

export function checkUser({ openclaw, users, sudoers, servicePaths }: UserFacts): Finding[] {
  const out: Finding[] = [];
  const oc = need(openclaw, C.dedicated, out);
  if (!oc) return out;
  if (oc.installs.length === 0) {
    for (const m of [C.dedicated, ...DEPENDENT]) out.push(m.skip("OpenClaw is not installed"));
    return out;
  }
  const u = need(users, C.dedicated, out);
  if (!u) return out;
  const errs: Finding[] = [];
  const s = need(sudoers, C.no_sudo, errs);
  out.push(...errs, ...partialProblems(sudoers, C.no_sudo), ...partialProblems(users, C.privileged_groups));
  const paths = servicePaths.status === "ok" ? servicePaths.value : { stats: {}, problems: [] };
  for (const i of oc.installs) out.push(...checkInstall(i, u, s, paths));
  return out;
}

export const userLayer = defineLayer({
  layer: "user",
  needs: ["openclaw", "users", "sudoers", "servicePaths", "loginDefs"],
  check: (facts) => [...checkUser(facts), ...checkHomeUmask(facts)],
});
