import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { ClawguardError } from "../errors.js";
import type { Host } from "../host/host.js";
import type { Ownership, Writer } from "../host/writer.js";
import {
  defaultRunner,
  loadRules,
  removeRules,
  systemctl,
  systemdRunning,
  tunnelDown,
  tunnelUp,
  type Runner,
  type Step,
} from "./live.js";
import {
  IPT_FILES,
  NFT_FILE,
  STATE_DIR,
  UNIT_NAME,
  realNoFollow,
  tunnelUnit,
  type Backend,
  type LockdownPlan,
  type TunnelState,
} from "./plan.js";

/** What a path was before lockdown touched it: enough to put it back byte for byte. */
export type Before =
  | { state: "absent" }
  | { state: "file"; mode: number; uid: number; gid: number; blob: string; sha256: string }
  | { state: "symlink"; target: string; uid: number; gid: number };

export interface LockdownState {
  schema: "clawguard.lockdown-state/v1";
  appliedAt: string;
  backend: Backend;
  shield: LockdownPlan["shield"];
  gatewayUnits: string[];
  /** The WireGuard tunnel to the shield, once joined: rollback takes it down. */
  tunnel?: TunnelState;
  /** In the order they were first changed; a re-apply keeps the first apply's backups. */
  entries: Array<{ path: string; before: Before }>;
  /** Directories lockdown created; removed on rollback when empty. */
  dirs: string[];
}

export const STATE_FILE = `${STATE_DIR}/state.json`;
const BACKUP_DIR = `${STATE_DIR}/backup`;

export interface LiveOptions {
  /** Load or remove the rules in this network namespace (default true). */
  live?: boolean;
  /** Run systemctl (default: only on the live root with systemd as init). */
  systemd?: boolean;
  run?: Runner;
}

export interface ApplyReport {
  schema: "clawguard.lockdown-apply/v1";
  root: string;
  written: string[];
  unchanged: string[];
  steps: Step[];
  /** What the operator still has to do. */
  notes: string[];
}

export interface RollbackReport {
  schema: "clawguard.lockdown-rollback/v1";
  root: string;
  restored: Array<{ path: string; to: Before["state"] }>;
  steps: Step[];
  problems: string[];
  /** No state was recorded: only the live rules were removed. */
  nothingRecorded: boolean;
}

function owner(host: Host): Ownership {
  // Written by root on a real system; in a test tree without root, by whoever runs the test.
  const uid = host.isRoot ? 0 : (process.getuid?.() ?? 0);
  const gid = host.isRoot ? 0 : (process.getgid?.() ?? 0);
  return { mode: 0o644, uid, gid };
}

export async function readState(host: Host): Promise<LockdownState | null> {
  let text: string;
  try {
    text = await host.readFile(STATE_FILE);
  } catch (err) {
    if ((await host.lstat(STATE_FILE)) === null) return null;
    throw err;
  }
  let parsed: LockdownState;
  try {
    parsed = JSON.parse(text) as LockdownState;
  } catch (err) {
    throw new ClawguardError(
      "CG_LOCKDOWN_STATE_INVALID",
      `${STATE_FILE} is not valid JSON (${err instanceof Error ? err.message : String(err)}); ` +
        `restore it from ${BACKUP_DIR} by hand or remove the lockdown files listed in the plan`,
    );
  }
  if (parsed.schema !== "clawguard.lockdown-state/v1")
    throw new ClawguardError("CG_LOCKDOWN_STATE_INVALID", `unknown schema ${String(parsed.schema)}`, {
      where: STATE_FILE,
    });
  return parsed;
}

async function saveState(host: Host, writer: Writer, state: LockdownState): Promise<void> {
  await writer.writeFile(STATE_FILE, JSON.stringify(state, null, 2) + "\n", { ...owner(host), mode: 0o600 });
}

async function mkdirs(
  host: Host,
  writer: Writer,
  dir: string,
  mode: number,
  created: string[],
): Promise<void> {
  const parts = dir.split("/").filter(Boolean);
  let cur = "";
  for (const part of parts) {
    cur += "/" + part;
    const st = await host.stat(cur);
    if (st?.type === "dir") continue;
    if (st)
      throw new ClawguardError(
        "CG_LOCKDOWN_FAILED",
        `${cur} exists and is not a directory; move it away and run lockdown again`,
      );
    await writer.mkdir(cur, { ...owner(host), mode });
    created.push(cur);
  }
}

/** Back up what is at `p` now (a file's bytes go to BACKUP_DIR) and say what it was. */
async function backUp(host: Host, writer: Writer, p: string, n: number): Promise<Before> {
  const st = await host.lstat(p);
  if (!st) return { state: "absent" };
  if (st.type === "symlink") {
    return {
      state: "symlink",
      target: await fs.readlink(await realNoFollow(host, p)),
      uid: st.uid,
      gid: st.gid,
    };
  }
  if (st.type !== "file")
    throw new ClawguardError(
      "CG_LOCKDOWN_FAILED",
      `${p} is a ${st.type}; lockdown replaces only files and symlinks`,
    );
  const bytes = await host.readBytes(p);
  const blob = `${BACKUP_DIR}/${n}-${path.posix.basename(p).replace(/[^A-Za-z0-9._-]/g, "_")}`;
  await writer.writeFile(blob, bytes, { ...owner(host), mode: 0o600 });
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return { state: "file", mode: st.mode, uid: st.uid, gid: st.gid, blob, sha256 };
}

/**
 * Write the plan's files and link (each one backed up in STATE_DIR before it is replaced), then
 * load the rules into the running kernel and, on a live system, start the unit and restart the
 * gateway. When the rules do not load, the files are put back: a ruleset that fails now would
 * fail at boot too.
 */
export async function applyLockdown(
  host: Host,
  writer: Writer,
  plan: LockdownPlan,
  opts: LiveOptions = {},
): Promise<ApplyReport> {
  const run = opts.run ?? defaultRunner;
  const useSystemd = opts.systemd ?? systemdRunning(host.root);
  await mkdirs(host, writer, path.posix.dirname(STATE_DIR), 0o755, []);
  await mkdirs(host, writer, BACKUP_DIR, 0o700, []);
  const prior = await readState(host);
  const state: LockdownState = {
    schema: "clawguard.lockdown-state/v1",
    appliedAt: new Date().toISOString(),
    backend: plan.backend,
    shield: plan.shield,
    gatewayUnits: plan.gatewayUnits,
    ...(plan.tunnel || prior?.tunnel ? { tunnel: plan.tunnel ?? prior?.tunnel } : {}),
    entries: prior?.entries ?? [],
    // Its own state directory is not listed: rollback removes it last, after reading the state.
    dirs: prior?.dirs ?? [],
  };
  const written: string[] = [];
  const unchanged: string[] = [];
  const track = async (p: string) => {
    if (state.entries.some((e) => e.path === p)) return;
    state.entries.push({ path: p, before: await backUp(host, writer, p, state.entries.length) });
    await saveState(host, writer, state);
  };
  try {
    for (const d of plan.dirs) {
      const made: string[] = [];
      await mkdirs(host, writer, d, 0o755, made);
      for (const m of made) if (!state.dirs.includes(m)) state.dirs.push(m);
    }
    await saveState(host, writer, state);
    for (const f of plan.files) {
      if (f.before === f.content) {
        unchanged.push(f.path);
        continue;
      }
      await track(f.path);
      await writer.writeFile(f.path, f.content, { ...owner(host), mode: f.mode });
      written.push(f.path);
    }
    for (const l of plan.links) {
      if (l.before === l.target) {
        unchanged.push(l.path);
        continue;
      }
      await track(l.path);
      if (l.before !== null) await writer.remove(l.path);
      await writer.symlink(l.target, l.path);
      written.push(l.path);
    }
  } catch (err) {
    const problems = await restoreFiles(host, writer, state);
    if (!prior && problems.length === 0) await forget(host, writer, state);
    throw err;
  }

  const steps: Step[] = [];
  const notes: string[] = [];
  if (opts.live !== false) {
    try {
      steps.push(
        ...(await loadRules(
          plan.backend,
          {
            nft: await realNoFollow(host, NFT_FILE),
            v4: await realNoFollow(host, IPT_FILES[4]),
            v6: await realNoFollow(host, IPT_FILES[6]),
          },
          run,
        )),
      );
    } catch (err) {
      const problems = await restoreFiles(host, writer, state);
      if (!prior && problems.length === 0) await forget(host, writer, state);
      const tail = problems.length
        ? ` Could not restore: ${problems.join("; ")}`
        : " The files were put back.";
      throw new ClawguardError(
        "CG_LOCKDOWN_FAILED",
        `${err instanceof Error ? err.message : String(err)}.${tail}`,
        {
          cause: err,
        },
      );
    }
  }
  if (useSystemd) {
    steps.push(await systemctl(run, ["daemon-reload"]));
    steps.push(await systemctl(run, ["restart", UNIT_NAME]));
    // After the rules, which let its packets out; a restart picks up a new key or endpoint.
    if (plan.tunnel) steps.push(await systemctl(run, ["restart", tunnelUnit(plan.tunnel.interface)]));
    for (const u of plan.gatewayUnits) steps.push(await systemctl(run, ["try-restart", u]));
  } else {
    if (plan.tunnel && opts.live !== false)
      steps.push(...(await tunnelUp(run, await realNoFollow(host, plan.tunnel.config))));
    notes.push(
      `systemd was not asked: the unit is enabled by its symlink and loads the rules at the next boot` +
        (plan.gatewayUnits.length
          ? `; restart ${plan.gatewayUnits.join(", ")} there (systemctl daemon-reload && systemctl restart ${plan.gatewayUnits.join(" ")}) to send it through the shield`
          : ""),
    );
  }
  return { schema: "clawguard.lockdown-apply/v1", root: host.root, written, unchanged, steps, notes };
}

async function restoreFiles(host: Host, writer: Writer, state: LockdownState): Promise<string[]> {
  const problems: string[] = [];
  for (const e of [...state.entries].reverse()) {
    try {
      await restoreOne(host, writer, e.path, e.before);
    } catch (err) {
      problems.push(`${e.path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  for (const d of [...state.dirs].reverse()) {
    const entries = await host.readDir(d).catch(() => null);
    if (entries && entries.length === 0) await writer.remove(d).catch(() => undefined);
  }
  return problems;
}

/** Remove the state and backups once everything they describe has been put back. */
async function forget(host: Host, writer: Writer, state: LockdownState): Promise<void> {
  for (const e of state.entries)
    if (e.before.state === "file" && (await host.lstat(e.before.blob))) await writer.remove(e.before.blob);
  if (await host.lstat(STATE_FILE)) await writer.remove(STATE_FILE);
  for (const d of [BACKUP_DIR, STATE_DIR]) {
    const left = await host.readDir(d).catch(() => null);
    if (left && left.length === 0) await writer.remove(d);
  }
}

async function restoreOne(host: Host, writer: Writer, p: string, b: Before): Promise<void> {
  const now = await host.lstat(p);
  if (now?.type === "dir") throw new Error("is now a directory; left as it is");
  switch (b.state) {
    case "absent":
      if (now) await writer.remove(p);
      return;
    case "file": {
      const bytes = await host.readBytes(b.blob);
      if (createHash("sha256").update(bytes).digest("hex") !== b.sha256)
        throw new Error(`backup ${b.blob} does not match its checksum; left ${p} as it is`);
      await writer.writeFile(p, bytes, { mode: b.mode, uid: b.uid, gid: b.gid });
      return;
    }
    case "symlink":
      if (now) await writer.remove(p);
      await writer.symlink(b.target, p);
      await writer.chown(p, b.uid, b.gid);
      return;
  }
}

/**
 * Undo lockdown: stop the unit and remove the live rules, put back every file as it was before
 * the first apply (or remove it), remove the directories it created, then its own state.
 */
export async function rollbackLockdown(
  host: Host,
  writer: Writer,
  opts: LiveOptions = {},
): Promise<RollbackReport> {
  const run = opts.run ?? defaultRunner;
  const useSystemd = opts.systemd ?? systemdRunning(host.root);
  const state = await readState(host);
  const steps: Step[] = [];
  const problems: string[] = [];
  if (useSystemd && state) steps.push(await systemctl(run, ["stop", UNIT_NAME]));
  // The tunnel goes before its config does: wg-quick needs the file to take it down.
  if (state?.tunnel) {
    if (useSystemd) steps.push(await systemctl(run, ["stop", tunnelUnit(state.tunnel.interface)]));
    else if (opts.live !== false)
      steps.push(await tunnelDown(run, await realNoFollow(host, state.tunnel.config)));
  }
  if (opts.live !== false) steps.push(...(await removeRules(state?.backend ?? "both", run)));
  for (const s of steps) if (!s.ok) problems.push(`${s.command}: ${s.detail ?? "failed"}`);
  const restored: RollbackReport["restored"] = [];
  if (state) {
    const failed = await restoreFiles(host, writer, state);
    problems.push(...failed);
    for (const e of state.entries)
      if (!failed.some((f) => f.startsWith(`${e.path}:`)))
        restored.push({ path: e.path, to: e.before.state });
    // With a problem left, the state and its backups stay for another try.
    if (failed.length === 0) await forget(host, writer, state);
    if (useSystemd) {
      steps.push(await systemctl(run, ["daemon-reload"]));
      for (const u of state.gatewayUnits) steps.push(await systemctl(run, ["try-restart", u]));
    }
  }
  return {
    schema: "clawguard.lockdown-rollback/v1",
    root: host.root,
    restored,
    steps,
    problems,
    nothingRecorded: state === null,
  };
}
