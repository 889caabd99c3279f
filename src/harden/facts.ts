import { randomBytes } from "node:crypto";
import { ClawguardError } from "../errors.js";
import type { FactContext } from "../host/context.js";
import { HostError } from "../host/errors.js";
import { gatherAptConf, type AptConfFact } from "../host/facts/aptconf.js";
import { gatherTmp, type TmpFact } from "../host/facts/mounts.js";
import { gatherOpenClaw } from "../host/facts/openclaw.js";
import type { OpenClawFact } from "../host/facts/openclaw-model.js";
import { gatherPackages, type PackagesFact } from "../host/facts/packages.js";
import { gatherSshd, type SshdFact } from "../host/facts/sshd.js";
import { gatherUfw, type UfwFact } from "../host/facts/ufw.js";
import { gatherUsers, type UsersFact } from "../host/facts/users.js";
import type { Fact } from "../host/fact.js";
import type { FileStat } from "../host/host.js";

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
  tmp: Fact<TmpFact>;
  apt: Fact<AptConfFact>;
  packages: Fact<PackagesFact>;
  users: Fact<UsersFact>;
  sshd: Fact<SshdFact>;
  ufw: Fact<UfwFact>;
  openclaw: Fact<OpenClawFact>;
  files: Map<string, FileNow>;
  /** Every entry under each state dir (not following symlinks), for modes and owners. */
  trees: Map<string, TreeEntry[]>;
  /** Where sshd's log is, for fail2ban's backend. */
  logs: { authLog: boolean; secureLog: boolean; journald: boolean };
  /** A fresh token, used only when the gateway has no auth. */
  token: string;
}

/** Files whose current text or existence the planners read. */
export const WATCHED_FILES = [
  "/etc/fstab",
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
  const [tmp, apt, packages, users, sshd, ufw, openclaw] = await Promise.all([
    ctx.get(gatherTmp),
    ctx.get(gatherAptConf),
    ctx.get(gatherPackages),
    ctx.get(gatherUsers),
    ctx.get(gatherSshd),
    ctx.get(gatherUfw),
    ctx.get(gatherOpenClaw),
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
