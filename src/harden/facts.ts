import { randomBytes } from "node:crypto";
import { ClawguardError } from "../errors.js";
import type { Facts } from "../facts/keys.js";
import type { FileStat } from "../facts/stat.js";
import type { FactContext } from "../host/context.js";
import { HostError } from "../host/errors.js";
import { SSH_CA_PRINCIPALS } from "../render/sshd-ca.js";

/** A path as it is now: enough for the plan to compute new content and skip what already holds. */
export interface FileNow {
  stat: FileStat | null;
  /** Text of a regular file the plan may rewrite. */
  text?: string;
}

export interface TreeEntry {
  path: string;
  type: FileStat["type"];
  mode: number;
  uid: number;
  gid: number;
}

export interface PlanFacts {
  /** Commands act on the running system only when the root is "/". */
  live: boolean;
  tmp: Facts["tmp"];
  apt: Facts["apt"];
  packages: Facts["packages"];
  users: Facts["users"];
  sshd: Facts["sshd"];
  ufw: Facts["ufw"];
  openclaw: Facts["openclaw"];
  sysctl: Facts["sysctl"];
  aptSources: Facts["aptSources"];
  banners: Facts["banners"];
  files: Map<string, FileNow>;
  /**
   * Every entry under each state dir (not following symlinks), for modes and owners; and under
   * the SSH CA's principals directory, for files of accounts that no longer take certificates.
   */
  trees: Map<string, TreeEntry[]>;
  /** Where sshd's log is, for fail2ban's backend. */
  logs: { authLog: boolean; secureLog: boolean; journald: boolean };
  /** A fresh token, used only when the gateway has no auth. */
  token: string;
}

/** Files whose current text or existence the planners read. */
export const WATCHED_FILES = [
  "/etc/fstab",
  "/etc/login.defs",
  "/etc/default/ufw",
  "/etc/ssh/sshd_config.d",
  "/etc/systemd/system/tmp.mount.d",
  "/etc/apt/apt.conf.d/50clawguard-tmp",
  "/etc/apt/apt.conf.d/20auto-upgrades",
  "/etc/apt/apt.conf.d/52clawguard-unattended-upgrades",
  "/var/cache/apt/tmp",
  "/etc/systemd/system/tmp.mount.d/clawguard.conf",
  "/etc/fail2ban/jail.d/clawguard.local",
  "/etc/systemd/system/multi-user.target.wants/fail2ban.service",
  "/etc/systemd/system/multi-user.target.wants/ufw.service",
  "/etc/ssh/sshd_config.d/50-clawguard.conf",
  "/etc/ssh/sshd_config.d/40-clawguard-ca.conf",
  "/etc/ssh/clawguard",
  "/etc/ssh/clawguard/revoked.krl",
  SSH_CA_PRINCIPALS,
  "/usr/local/bin/openclaw",
  "/usr/bin/openclaw",
  "/var/www",
  "/var/log/auth.log",
  "/var/log/secure",
  "/var/log/journal",
  "/run/systemd/journal",
  "/usr/lib/systemd/systemd-journald",
  "/lib/systemd/systemd-journald",
];

const TREE_CAP = 20_000;

export async function readNow(ctx: FactContext, p: string): Promise<FileNow> {
  const stat = await ctx.host.lstat(p);
  if (stat?.type !== "file") return { stat };
  try {
    return { stat, text: await ctx.host.readFile(p) };
  } catch (err) {
    if (err instanceof HostError) return { stat };
    throw err;
  }
}

async function walk(ctx: FactContext, dir: string, out: TreeEntry[]): Promise<void> {
  const st = await ctx.host.lstat(dir);
  if (!st) return;
  out.push({ path: dir, type: st.type, mode: st.mode, uid: st.uid, gid: st.gid });
  if (st.type !== "dir") return;
  for (const e of await ctx.host.readDir(dir)) {
    if (out.length >= TREE_CAP)
      throw new ClawguardError(
        "CG_PLAN_REFUSED",
        `${dir} has more than ${TREE_CAP} entries; fix its modes by hand`,
      );
    await walk(ctx, `${dir}/${e.name}`, out);
  }
}

export async function gatherPlanFacts(ctx: FactContext): Promise<PlanFacts> {
  const [tmp, apt, packages, users, sshd, ufw, openclaw, sysctl, aptSources, banners] = await Promise.all([
    ctx.get("tmp"),
    ctx.get("apt"),
    ctx.get("packages"),
    ctx.get("users"),
    ctx.get("sshd"),
    ctx.get("ufw"),
    ctx.get("openclaw"),
    ctx.get("sysctl"),
    ctx.get("aptSources"),
    ctx.get("banners"),
  ]);
  const files = new Map<string, FileNow>();
  const extra: string[] = [];
  const trees = new Map<string, TreeEntry[]>();
  if (openclaw.status === "ok") {
    for (const i of openclaw.value.installs) {
      extra.push(i.configPath);
      if (i.unit) extra.push(i.unit.path);
      const entries: TreeEntry[] = [];
      await walk(ctx, i.stateDir, entries);
      trees.set(i.stateDir, entries);
      const home = i.stateDir.slice(0, i.stateDir.lastIndexOf("/")) || "/";
      extra.push(`${home}/.config/openclaw/gateway.env`);
    }
    for (const u of openclaw.value.units) {
      extra.push(u.path);
      if (u.scope === "user") extra.push(u.path.replace(/[^/]+$/, `default.target.wants/${u.name}`));
    }
  }
  const principals: TreeEntry[] = [];
  await walk(ctx, SSH_CA_PRINCIPALS, principals);
  trees.set(SSH_CA_PRINCIPALS, principals);
  for (const p of [...WATCHED_FILES, ...extra]) if (!files.has(p)) files.set(p, await readNow(ctx, p));
  const has = (p: string) => files.get(p)?.stat != null;
  return {
    live: ctx.host.root === "/",
    tmp,
    apt,
    packages,
    users,
    sshd,
    ufw,
    openclaw,
    sysctl,
    aptSources,
    banners,
    files,
    trees,
    logs: {
      authLog: has("/var/log/auth.log"),
      secureLog: has("/var/log/secure"),
      journald: [
        "/var/log/journal",
        "/run/systemd/journal",
        "/usr/lib/systemd/systemd-journald",
        "/lib/systemd/systemd-journald",
      ].some(has),
    },
    token: randomBytes(32).toString("hex"),
  };
}
