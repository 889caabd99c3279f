import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { failed, ok, skipped } from "../../facts/fact.js";
import type { OpenClawInstall } from "../../facts/openclaw.js";
import {
  parseAuditOutput,
  type OpenClawAuditReport,
  type OpenClawAuditRun,
} from "../../facts/openclaw-audit.js";
import { execWords } from "../../facts/units.js";
import type { PasswdEntry } from "../../facts/users.js";
import type { FactContext, Gatherer } from "../context.js";
import { HostError, toProblem } from "../errors.js";
import { gather } from "./guard.js";

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Where `openclaw` is installed in practice, most specific first. */
function candidates(installs: OpenClawInstall[], homes: string[], livePath: string[]): string[] {
  const out: string[] = [];
  for (const i of installs) {
    const w = i.unit ? execWords(i.unit.execStart) : [];
    if (w[0] && path.posix.basename(w[0]) === "openclaw") out.push(w[0]);
  }
  for (const d of livePath) out.push(`${d}/openclaw`);
  out.push("/usr/local/bin/openclaw", "/usr/bin/openclaw");
  for (const h of homes)
    out.push(`${h}/.npm-global/bin/openclaw`, `${h}/.local/bin/openclaw`, `${h}/node_modules/.bin/openclaw`);
  out.push("/opt/openclaw/node_modules/.bin/openclaw", "/usr/local/lib/node_modules/.bin/openclaw");
  return [...new Set(out.filter((p) => p.startsWith("/")))];
}

/**
 * Never run as root a program that another user can replace: when the audit runs as root,
 * `openclaw` runs as its file's owner if that is not root, else as the gateway's user.
 */
function dropTo(
  isRoot: boolean,
  binOwner: number,
  svc: PasswdEntry | undefined,
): { uid: number; gid: number } | null {
  if (!isRoot) return null;
  if (binOwner !== 0) return { uid: binOwner, gid: svc?.uid === binOwner ? svc.gid : binOwner };
  if (svc && svc.uid !== 0) return { uid: svc.uid, gid: svc.gid };
  return null;
}

async function runOnce(
  ctx: FactContext,
  bin: string,
  binOwner: number,
  install: OpenClawInstall | undefined,
  svc: PasswdEntry | undefined,
  timeoutMs: number,
): Promise<OpenClawAuditRun> {
  const args = ["security", "audit", "--json"];
  const command = `${bin} ${args.join(" ")}`;
  const env: Record<string, string> = { PATH: `${path.posix.dirname(bin)}:${DEFAULT_PATH}` };
  if (svc) Object.assign(env, { HOME: svc.home, USER: svc.name, LOGNAME: svc.name });
  if (install) {
    env.OPENCLAW_STATE_DIR = install.stateDir;
    env.OPENCLAW_CONFIG_PATH = install.configPath;
  }
  const drop = dropTo(ctx.host.isRoot, binOwner, svc);
  const [cmd, argv] = drop
    ? ["setpriv", [`--reuid=${drop.uid}`, `--regid=${drop.gid}`, "--clear-groups", "--", bin, ...args]]
    : [bin, args];
  const r = await ctx.host.run(cmd, argv, { timeoutMs, env });
  let report: OpenClawAuditReport;
  try {
    report = parseAuditOutput(r.stdout);
  } catch (err) {
    const why =
      err instanceof z.ZodError
        ? `unexpected JSON shape: ${err.issues[0]?.path.join(".")} ${err.issues[0]?.message}`
        : (err as Error).message;
    throw new HostError({
      kind: "malformed",
      source: command,
      message: `exit ${r.code}, ${why}${r.stderr.trim() ? `; stderr: ${r.stderr.trim().split("\n").slice(-2).join(" ").slice(0, 200)}` : ""}`,
    });
  }
  return {
    command,
    ranAs: drop ? `uid ${drop.uid}` : ctx.host.isRoot ? "root" : "this user",
    stateDir: install?.stateDir,
    report,
  };
}

/** The openclaw package's version for a bin shim inside it, from its package.json. */
function packageVersion(localBin: string): string {
  for (let d = path.dirname(localBin); d !== path.dirname(d); d = path.dirname(d)) {
    const p = path.join(d, "package.json");
    if (!existsSync(p)) continue;
    try {
      const pkg = JSON.parse(readFileSync(p, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "openclaw") return pkg.version ?? "";
    } catch {
      // Not a package.json we can read: keep looking above.
    }
  }
  return "";
}

/**
 * What decides OpenClaw's answer: its version (package and the bin file's bytes), who runs it
 * and each install's config (bytes, mode, owner). Null when one of them cannot be read, so that
 * nothing unreadable is ever cached.
 */
async function cacheKey(
  ctx: FactContext,
  bin: string,
  installs: OpenClawInstall[],
  ranAs: string,
): Promise<string | null> {
  try {
    const local = await ctx.host.resolve(bin);
    const h = createHash("sha256");
    h.update(
      `${packageVersion(local)}\0${await ctx.host.readBytes(bin).then((b) => createHash("sha256").update(b).digest("hex"))}\0${bin}\0${ranAs}\0`,
    );
    for (const i of installs) {
      const st = await ctx.host.stat(i.configPath);
      const bytes = st ? await ctx.host.readBytes(i.configPath) : Buffer.alloc(0);
      h.update(`${i.stateDir}\0${i.configPath}\0${st ? `${st.mode}:${st.uid}` : "none"}\0`);
      h.update(bytes);
    }
    return h.digest("hex");
  } catch {
    return null;
  }
}

async function fromCache(file: string): Promise<OpenClawAuditRun[] | null> {
  try {
    const saved = JSON.parse(await readFile(file, "utf8")) as { runs?: OpenClawAuditRun[] };
    return Array.isArray(saved.runs) ? saved.runs : null;
  } catch {
    return null;
  }
}

async function toCache(file: string, runs: OpenClawAuditRun[]): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ savedAt: new Date().toISOString(), runs }), { mode: 0o600 });
    await rename(tmp, file);
  } catch {
    // A cache that cannot be written only costs the next audit its time.
  }
}

/** A gatherer that runs OpenClaw's own audit once per install, each run limited to `timeoutMs`. */
export function openClawAuditGatherer(defaultTimeoutMs: number): Gatherer<OpenClawAuditRun[]> {
  return (ctx) =>
    gather("openclaw security audit --json", async () => {
      const [oc, users] = await Promise.all([ctx.get("openclaw"), ctx.get("users")]);
      const installs = oc.status === "ok" ? oc.value.installs : [];
      const userList = users.status === "ok" ? users.value.users : [];
      const homes = [
        ...new Set(
          installs.flatMap((i) =>
            userList.filter((u) => u.name === i.runsAs || u.name === i.owner).map((u) => u.home),
          ),
        ),
      ];
      // The live PATH says where this machine's tools are; a mounted image has its own.
      const livePath = ctx.host.root === "/" ? (process.env.PATH ?? "").split(":").filter(Boolean) : [];
      let bin: string | undefined;
      let binOwner = 0;
      for (const c of candidates(installs, homes, livePath)) {
        try {
          const st = await ctx.host.stat(c);
          if (st?.type === "file" && (st.mode & 0o111) !== 0) {
            bin = c;
            binOwner = st.uid;
            break;
          }
        } catch {
          // An unreadable candidate is no candidate: keep looking.
        }
      }
      if (!bin)
        return skipped<OpenClawAuditRun[]>(
          "no openclaw binary found (PATH, /usr/local/bin, /usr/bin, ~/.npm-global/bin, node_modules/.bin)",
        );
      const timeoutMs = ctx.options.openclawAuditTimeoutMs ?? defaultTimeoutMs;
      const who = ctx.host.isRoot ? "root" : String(process.getuid?.() ?? "");
      const key = ctx.options.cacheDir ? await cacheKey(ctx, bin, installs, who) : null;
      const cacheFile = key ? path.join(ctx.options.cacheDir!, `openclaw-audit-${key}.json`) : null;
      const cached = cacheFile ? await fromCache(cacheFile) : null;
      if (cached) return ok(cached, [bin]);
      const runs: OpenClawAuditRun[] = [];
      const targets: Array<OpenClawInstall | undefined> = installs.length ? installs : [undefined];
      ctx.options.progress?.("start", "openclaw security audit", timeoutMs * targets.length);
      try {
        for (const i of targets) {
          const svc = userList.find((u) => u.name === i?.runsAs);
          try {
            runs.push(await runOnce(ctx, bin, binOwner, i, svc, timeoutMs));
          } catch (err) {
            if (
              err instanceof HostError &&
              (err.problem.kind === "unavailable" ||
                (err.problem.kind === "missing" && err.problem.source.startsWith("setpriv")))
            )
              return skipped<OpenClawAuditRun[]>(
                `found ${bin} but cannot run it safely here: ${err.problem.message}`,
              );
            return failed<OpenClawAuditRun[]>(toProblem(`${bin} security audit --json`, err));
          }
        }
      } finally {
        ctx.options.progress?.("end", "openclaw security audit", 0);
      }
      if (cacheFile) await toCache(cacheFile, runs);
      return ok(runs, [bin]);
    });
}

// openclaw 2026.9.6 took 25 s on an empty home and up to 53 s on a loaded 2-core server: a
// shorter limit turns a slow but healthy run into an error finding.
export const OPENCLAW_AUDIT_TIMEOUT_MS = 60_000;
export const gatherOpenClawAudit = openClawAuditGatherer(OPENCLAW_AUDIT_TIMEOUT_MS);
