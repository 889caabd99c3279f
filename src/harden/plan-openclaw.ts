import path from "node:path";
import type { Layer } from "../checks/finding.js";
import { isSecretInStateDir } from "../facts/credentials.js";
import type { GatewayUnit, OpenClawInstall } from "../facts/openclaw.js";
import { execWords } from "../facts/units.js";
import type { PasswdEntry, UsersFact } from "../facts/users.js";
import { editOpenClawConfig } from "../render/openclaw-config.js";
import { renderGatewayUnit } from "../render/systemd-unit.js";
import { shellQuote, type Change } from "../change/change.js";
import { failing, type LayerPlan, type PlanInput } from "./plan.js";
import { parseShield } from "./profile.js";

const NOLOGIN = "/usr/sbin/nologin";
const SYSTEM_UNIT_DIR = "/etc/systemd/system";
/** Variables the new unit sets itself; carried-over lines setting only one of these are dropped. */
const OWN_ENV = /^(HOME|OPENCLAW_STATE_DIR|OPENCLAW_CONFIG_PATH)=/;
const PROXY_ENV = /^(OPENCLAW_PROXY_URL|HTTPS?_PROXY|NO_PROXY)=/;

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.replace(/\/$/, "") + "/");
}

function remap(p: string, from: string, to: string): string {
  return under(p, from) ? to + p.slice(from.length) : p;
}

/** A user's primary group name: the group named after it when the ids agree, else the first with its gid. */
function primaryGroup(users: UsersFact, u: PasswdEntry): string {
  return (
    users.groups.find((g) => g.gid === u.gid && g.name === u.name)?.name ??
    users.groups.find((g) => g.gid === u.gid)?.name ??
    String(u.gid)
  );
}

function isAdminLogin(u: PasswdEntry, users: UsersFact): boolean {
  const groups = users.groups.filter((g) => g.gid === u.gid || g.members.includes(u.name)).map((g) => g.name);
  return !/(nologin|false)$/.test(u.shell) && groups.some((g) => ["sudo", "wheel", "admin"].includes(g));
}

/** Who the gateway should run as, and whether harden must create or switch to that user. */
interface ServiceUser {
  name: string;
  group: string;
  home: string;
  exists: boolean;
  /** The gateway moves to this user (it ran as root or as a person's admin account). */
  switching: boolean;
  entry?: PasswdEntry;
}

function serviceUser(input: PlanInput, i: OpenClawInstall, users: UsersFact): ServiceUser {
  const current = users.users.find((u) => u.name === i.runsAs);
  const fine = current && current.uid !== 0 && !isAdminLogin(current, users);
  const name = fine ? current.name : input.profile.user;
  const entry = users.users.find((u) => u.name === name);
  const group = entry ? primaryGroup(users, entry) : name;
  return {
    name,
    group,
    home: entry?.home ?? `/home/${name}`,
    exists: entry !== undefined,
    switching: !fine,
    entry,
  };
}

/** The launcher words of the old ExecStart (`/usr/bin/node /opt/openclaw.mjs`), or a found binary. */
function launcher(i: OpenClawInstall, input: PlanInput): string | undefined {
  const words = i.unit ? execWords(i.unit.execStart) : [];
  const at = words.indexOf("gateway");
  if (at > 0 && words[0]!.startsWith("/")) return words.slice(0, at).map(shellQuote).join(" ");
  for (const p of ["/usr/local/bin/openclaw", "/usr/bin/openclaw"])
    if (input.facts.files.get(p)?.stat) return p;
  return undefined;
}

function carried(i: OpenClawInstall, shield: boolean): { environment: string[]; environmentFiles: string[] } {
  const d = i.unit?.directives ?? {};
  // The shield's proxy replaces an old one; without a shield the old proxy stays.
  const own = (e: string) => (OWN_ENV.test(e) || (shield && PROXY_ENV.test(e))) && !/\s/.test(e.trim());
  return {
    environment: (d.Environment ?? []).filter((e) => !own(e)),
    environmentFiles: d.EnvironmentFile ?? [],
  };
}

/** Stop the unit that runs a gateway; start it again last when the run is rolled back. */
function stopUnit(unit: GatewayUnit): Change {
  if (unit.scope === "system")
    return {
      kind: "command",
      argv: ["systemctl", "stop", unit.name],
      undo: ["systemctl", "start", unit.name],
      undoLast: true,
      live: true,
      fixes: [],
      note: "the gateway stays stopped while its state dir is secured and moved",
    };
  const user = `--machine=${shellQuote(unit.owner ?? "")}@`;
  return {
    kind: "command",
    argv: ["sh", "-c", `systemctl --user ${user} stop ${shellQuote(unit.name)} 2>/dev/null || true`],
    undo: [
      "sh",
      "-c",
      // Without the user's manager running (no lingering) the gateway was not running either.
      `(systemctl --user ${user} daemon-reload && systemctl --user ${user} start ${shellQuote(unit.name)}) 2>/dev/null || true`,
    ],
    undoLast: true,
    live: true,
    fixes: [],
    note: "the gateway stays stopped while its state dir is secured and moved",
  };
}

/**
 * The user, credentials, systemd and gateway layers for each OpenClaw install: they depend on
 * one another (a new user moves the state dir, the unit and the config follow it), so they are
 * planned together and returned per layer for the caller to order.
 */
export function planOpenClaw(input: PlanInput, skip: Set<Layer>): Partial<Record<Layer, LayerPlan>> {
  const { facts, findings, profile } = input;
  const out: Record<"user" | "credentials" | "systemd" | "gateway", LayerPlan> = {
    user: { changes: [] },
    credentials: { changes: [] },
    systemd: { changes: [] },
    gateway: { changes: [] },
  };
  if (facts.openclaw.status !== "ok" || facts.users.status !== "ok") return out;
  const users = facts.users.value;
  const installs = facts.openclaw.value.installs.filter((i) => i.stateDirExists || i.unit);
  const userUnits = facts.openclaw.value.units.filter((x) => x.scope === "user");
  const created = new Set<string>();
  installs.forEach((i, index) => {
    const svc = serviceUser(input, i, users);
    const userIds = failing(findings, "user", [
      "dedicated",
      "no_sudo",
      "privileged_groups",
      "login_shell",
      "home_owned",
    ]);
    const ownerIds = failing(findings, "credentials", ["owner"]);
    const switching = svc.switching && !skip.has("user");
    const stateDir =
      switching && !under(i.stateDir, svc.home)
        ? path.posix.join(svc.home, path.posix.basename(i.stateDir))
        : i.stateDir;
    const moved = stateDir !== i.stateDir;
    const tree = facts.trees.get(i.stateDir) ?? [];
    const owner = switching ? svc.name : (i.runsAs ?? svc.name);
    const ownerEntry = users.users.find((u) => u.name === owner);

    // user: create the service user, move the state dir into its home.
    if (switching) {
      if (!svc.exists && !created.has(svc.name)) {
        created.add(svc.name);
        out.user.changes.push({
          kind: "command",
          argv: [
            "useradd",
            "--system",
            "--user-group",
            "--create-home",
            "--home-dir",
            svc.home,
            "--shell",
            NOLOGIN,
            svc.name,
          ],
          undo: ["userdel", "--remove", svc.name],
          fixes: userIds,
        });
        if (profile.www)
          out.user.changes.push({
            kind: "command",
            argv: ["usermod", "--append", "--groups", "www-data", svc.name],
            fixes: [],
          });
      }
      if (moved) {
        if (facts.files.get(stateDir)?.stat || facts.trees.get(stateDir)?.length) {
          out.user.blocked = `${stateDir} already exists; move ${i.stateDir} there by hand`;
        } else {
          out.user.changes.push({ kind: "move", from: i.stateDir, to: stateDir, fixes: userIds });
        }
      }
      // One walk when the change runs, not one chown per entry seen at plan time: the gateway
      // created and deleted files (temp files, SQLite journals) until it was stopped.
      if (tree.length || i.stateDirExists)
        out.user.changes.push({
          kind: "chown-tree",
          path: stateDir,
          owner: svc.name,
          group: svc.group,
          fixes: [...failing(findings, "user", ["home_owned"]), ...ownerIds],
        });
    } else if (
      svc.entry &&
      svc.entry.shell !== NOLOGIN &&
      failing(findings, "user", ["login_shell"]).length
    ) {
      out.user.changes.push({
        kind: "command",
        argv: ["usermod", "--shell", NOLOGIN, svc.name],
        undo: ["usermod", "--shell", svc.entry.shell, svc.name],
        fixes: failing(findings, "user", ["login_shell"]),
      });
    }

    // credentials: every dir 700, every file 600 (the owner's x bit kept), owned by the service user.
    const modeIds = failing(findings, "credentials", ["world_readable", "group_readable"]);
    // The same secrets the credentials check walks: the agent's workspace is its own business.
    const secret = (e: { path: string; type: string }) =>
      (e.type === "file" || e.type === "dir") &&
      isSecretInStateDir(e.path === i.stateDir ? "" : e.path.slice(i.stateDir.length + 1), e.type);
    for (const e of tree) {
      if (!secret(e)) continue;
      const want = e.type === "dir" ? 0o700 : (e.mode & 0o100) | 0o600;
      if ((e.mode & 0o7777) !== want)
        out.credentials.changes.push({
          kind: "chmod",
          path: e.path,
          mode: want,
          fixes: modeIds,
          optional: true,
          within: i.stateDir,
        });
    }
    if (!switching && ownerEntry && ownerEntry.uid !== 0) {
      for (const e of tree)
        if (secret(e) && e.uid !== ownerEntry.uid)
          out.credentials.changes.push({
            kind: "chown",
            path: e.path,
            owner: ownerEntry.name,
            group: primaryGroup(users, ownerEntry),
            fixes: ownerIds,
            optional: true,
            within: i.stateDir,
          });
    }
    const home = path.posix.dirname(i.stateDir);
    const envFile = facts.files.get(`${home}/.config/openclaw/gateway.env`);
    if (envFile?.stat && (envFile.stat.mode & 0o077) !== 0)
      out.credentials.changes.push({
        kind: "chmod",
        path: `${home}/.config/openclaw/gateway.env`,
        mode: 0o600,
        fixes: modeIds,
        within: home,
      });

    // systemd: a sandboxed system unit, and no user unit running a second gateway.
    const sysIds = failing(findings, "systemd");
    const unitName =
      i.unit?.scope === "system"
        ? i.unit.name
        : index === 0
          ? "openclaw-gateway.service"
          : `openclaw-gateway-${owner}.service`;
    const unitPath = `${SYSTEM_UNIT_DIR}/${unitName}`;
    const configPath = remap(i.configPath, i.stateDir, stateDir);
    const port = i.portSource.startsWith("default") ? profile.gatewayPort : i.port;
    if (!skip.has("systemd") && (sysIds.length || switching || i.unit?.scope !== "system")) {
      const bin = launcher(i, input);
      if (!bin) {
        out.systemd.blocked =
          "cannot find the openclaw launcher (not in /usr/local/bin or /usr/bin, no unit to copy it from)";
      } else {
        out.systemd.changes.push({
          kind: "file",
          path: unitPath,
          content: renderGatewayUnit({
            user: switching ? svc.name : owner,
            group: switching ? svc.group : ownerEntry ? primaryGroup(users, ownerEntry) : owner,
            home: switching ? svc.home : (ownerEntry?.home ?? svc.home),
            stateDir,
            workspace: remap(i.workspace ?? path.posix.join(i.stateDir, "workspace"), i.stateDir, stateDir),
            port,
            openclaw: bin,
            www: profile.www,
            shield: profile.shield ? parseShield(profile.shield) : undefined,
            configPath: configPath === path.posix.join(stateDir, "openclaw.json") ? undefined : configPath,
            carried: carried(i, profile.shield !== undefined),
          }),
          mode: 0o644,
          owner: "root",
          group: "root",
          fixes: sysIds,
        });
        out.systemd.changes.push({
          kind: "command",
          argv: ["systemctl", "daemon-reload"],
          refresh: true,
          onlyIf: [unitPath],
          live: true,
          fixes: [],
        });
        if (!(i.unit?.scope === "system" && i.unit.enabled))
          out.systemd.changes.push({
            kind: "command",
            argv: ["systemctl", "enable", unitName],
            undo: ["systemctl", "disable", unitName],
            live: true,
            fixes: failing(findings, "systemd", ["unit_enabled"]),
          });
      }
    }
    // gateway: openclaw.json on loopback with a token.
    const bindIds = failing(findings, "gateway", ["bind_loopback", "listener_loopback"]);
    const authIds = failing(findings, "gateway", ["auth_enabled", "auth_secret_strength"]);
    if (!skip.has("gateway") && (bindIds.length || authIds.length)) {
      const now = facts.files.get(i.configPath);
      if (i.configProblem && i.configProblem.kind !== "missing") {
        out.gateway.blocked = `${i.configPath} cannot be edited: ${i.configProblem.message}`;
      } else {
        const loopback =
          i.config?.bind !== undefined && i.config.bind !== "loopback" ? true : bindIds.length > 0;
        const edited = editOpenClawConfig(now?.text ?? "", {
          loopback,
          token: authIds.length ? facts.token : undefined,
        });
        out.gateway.changes.push({
          kind: "file",
          path: configPath,
          content: edited.content,
          // The agent's user can rewrite its state dir: the config lands in it or nowhere.
          ...(under(configPath, stateDir) ? { within: stateDir } : {}),
          mode: 0o600,
          owner: switching ? svc.name : owner,
          group: switching ? svc.group : ownerEntry ? primaryGroup(users, ownerEntry) : owner,
          fixes: [...bindIds, ...authIds],
          note:
            [
              edited.commentsLost
                ? "openclaw.json is rewritten as plain JSON: its comments are lost (the backup keeps them)"
                : "",
              authIds.length ? `new gateway token: read it with: sudo cat ${configPath} | grep token` : "",
            ]
              .filter(Boolean)
              .join("; ") || undefined,
        });
      }
    }
    const restartOn = [unitPath, configPath];
    const restarts = out.systemd.changes.length > 0 || out.gateway.changes.length > 0;
    if (switching && restarts && i.unit) {
      // The gateway keeps writing its state dir while it runs: stop it before the dir is touched
      // (its modes, its move, its owner); the restart below brings it up under the new unit, and
      // a rollback starts it again as it ran before.
      const first = skip.has("credentials") ? out.user : out.credentials;
      first.changes.unshift({ ...stopUnit(i.unit), gateway: true });
    }
    if (restarts)
      out.gateway.changes.push({
        kind: "command",
        argv: ["systemctl", "restart", unitName],
        // On the way back the gateway stops first, so its user and state dir can be taken back.
        undo: ["systemctl", "stop", unitName],
        refresh: true,
        onlyIf: restartOn,
        live: true,
        fixes: [],
      });
  });
  if (!skip.has("systemd")) {
    for (const u of userUnits.filter((x) => x.scope === "user")) {
      const wants = u.path.replace(/[^/]+$/, `default.target.wants/${u.name}`);
      const ids = failing(findings, "systemd", ["user_unit_conflict"]);
      out.systemd.changes.push({
        kind: "command",
        argv: [
          "sh",
          "-c",
          `systemctl --user --machine=${shellQuote(u.owner ?? "")}@ stop ${shellQuote(u.name)} 2>/dev/null || true`,
        ],
        live: true,
        fixes: ids,
        note: "stops the gateway the user unit runs, so the system unit can take its port",
      });
      if (facts.files.get(wants)?.stat) out.systemd.changes.push({ kind: "remove", path: wants, fixes: ids });
      out.systemd.changes.push({
        kind: "move",
        from: u.path,
        to: `${u.path}.disabled-by-clawguard`,
        fixes: ids,
      });
    }
  }
  for (const layer of ["user", "systemd", "gateway"] as const)
    for (const c of out[layer].changes) c.gateway = true;
  return out;
}
