import path from "node:path";
import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { table } from "../../facts/record.js";
import {
  DEFAULT_GATEWAY_PORT,
  parseOpenClawConfig,
  redactEnvValue,
  type GatewayUnit,
  type OpenClawFact,
  type OpenClawInstall,
  type ParsedConfig,
} from "../../facts/openclaw.js";
import {
  execWords,
  expandSpecifiers,
  flagValue,
  lastAssignment,
  parseEnvironmentFile,
  parseEnvironmentLine,
  type LocatedUnit,
} from "../../facts/units.js";
import type { PasswdEntry, UsersFact } from "../../facts/users.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";
import { readScopedUnit } from "./units.js";

const SYSTEM_UNIT_DIRS = [
  "/etc/systemd/system",
  "/run/systemd/system",
  "/usr/lib/systemd/system",
  "/lib/systemd/system",
];
const USER_UNIT_DIR = ".config/systemd/user";
const UNIT_NAME = /^openclaw[^/]*\.service$/;
const STATE_DIR_NAME = /^\.openclaw(-[A-Za-z0-9_.-]+)?$/;
/** Read and parse openclaw.json. */
async function readOpenClawConfig(
  ctx: FactContext,
  configPath: string,
  env: Record<string, string>,
): Promise<ParsedConfig> {
  let text: string;
  try {
    text = await ctx.host.readFile(configPath);
  } catch (err) {
    return { problem: toProblem(configPath, err) };
  }
  return parseOpenClawConfig(text, configPath, env);
}

interface RawUnit {
  unit: GatewayUnit;
  /** Unredacted environment, used only to resolve lengths of referenced secrets. */
  rawEnv: Record<string, string>;
  home?: string;
}

function collectDirectives(u: LocatedUnit): {
  directives: Record<string, string[]>;
  at: Record<string, string>;
} {
  const directives: Record<string, string[]> = table();
  const at: Record<string, string> = table();
  for (const section of ["Unit", "Install", "Service"]) {
    for (const [key, values] of Object.entries(u[section] ?? {})) {
      directives[key] = values.map((v) => v.value);
      const last = values[values.length - 1];
      if (last) at[key] = last.at;
      else delete at[key];
    }
  }
  return { directives, at };
}

async function isEnabled(
  ctx: FactContext,
  name: string,
  wantsDirs: string[],
  targets: string[],
): Promise<boolean> {
  for (const dir of wantsDirs)
    for (const t of targets) if (await ctx.host.lstat(`${dir}/${t}.wants/${name}`)) return true;
  return false;
}

async function loadUnit(
  ctx: FactContext,
  unitPath: string,
  scope: "system" | "user",
  users: UsersFact,
  problems: Problem[],
  owner?: PasswdEntry,
): Promise<RawUnit | null> {
  const lst = await ctx.host.lstat(unitPath);
  if (lst?.type === "symlink" && (await ctx.host.resolve(unitPath)).endsWith("/dev/null")) return null; // masked
  const read = await readScopedUnit(ctx, unitPath, scope);
  if (!read) return null;
  const { directives, at } = collectDirectives(read.unit);
  const name = path.posix.basename(unitPath);
  const userSetting = lastAssignment(read.unit, "Service", "User")?.value;
  let runsAs: string;
  if (scope === "user") runsAs = owner?.name ?? "unknown";
  else if (/^(yes|true|on|1)$/i.test(lastAssignment(read.unit, "Service", "DynamicUser")?.value ?? ""))
    runsAs = userSetting ?? name.replace(/\.service$/, "");
  else if (userSetting === undefined) runsAs = "root";
  else if (/^\d+$/.test(userSetting))
    runsAs = users.users.find((u) => u.uid === Number(userSetting))?.name ?? userSetting;
  else runsAs = userSetting;
  const runner = users.users.find((u) => u.name === runsAs);
  const home = scope === "user" ? owner?.home : runner?.home;
  const vars = { home, user: runsAs };

  const rawEnv: Record<string, string> = table();
  const environmentAt: Record<string, string> = table();
  for (const a of read.unit.Service?.Environment ?? []) {
    for (const [k, v] of parseEnvironmentLine(a.value)) {
      rawEnv[k] = v;
      environmentAt[k] = a.at;
    }
  }
  // systemd: EnvironmentFile= settings override Environment=, later files override earlier.
  for (const a of read.unit.Service?.EnvironmentFile ?? []) {
    const optional = a.value.startsWith("-");
    const file = expandSpecifiers(a.value.replace(/^-/, ""), vars);
    try {
      for (const [k, v, line] of parseEnvironmentFile(await ctx.host.readFile(file))) {
        rawEnv[k] = v;
        environmentAt[k] = `${file}:${line}`;
      }
    } catch (err) {
      if (!(optional && isMissing(err))) problems.push(toProblem(file, err));
    }
  }
  const environment: Record<string, string> = table();
  for (const [k, v] of Object.entries(rawEnv)) environment[k] = redactEnvValue(k, v);

  const execStart = lastAssignment(read.unit, "Service", "ExecStart")?.value ?? "";
  const words = execWords(execStart);
  const portFlag = flagValue(words, "--port");
  const flags: GatewayUnit["flags"] = {
    bind: flagValue(words, "--bind"),
    port: portFlag !== undefined && /^\d+$/.test(portFlag) ? Number(portFlag) : undefined,
    profile: flagValue(words, "--profile"),
  };
  const targets = (read.unit.Install?.WantedBy ?? [])
    .flatMap((a) => a.value.split(/\s+/))
    .concat(read.unit.Install?.RequiredBy?.flatMap((a) => a.value.split(/\s+/)) ?? []);
  const wantTargets = targets.length
    ? targets
    : scope === "system"
      ? ["multi-user.target"]
      : ["default.target"];
  const wantsDirs =
    scope === "system"
      ? ["/etc/systemd/system"]
      : [`${owner?.home ?? ""}/${USER_UNIT_DIR}`, "/etc/systemd/user"];
  const enabled = await isEnabled(ctx, name, wantsDirs, wantTargets);
  return {
    unit: {
      path: unitPath,
      scope,
      owner: owner?.name,
      directives,
      execStart,
      runsAs,
      environment,
      flags,
      enabled,
      name,
      sources: read.sources,
      directiveAt: at,
      environmentAt,
    },
    rawEnv,
    home,
  };
}

async function listDir(ctx: FactContext, dir: string, problems: Problem[]): Promise<string[]> {
  try {
    return (await ctx.host.readDir(dir)).map((e) => e.name);
  } catch (err) {
    if (!isMissing(err)) problems.push(toProblem(dir, err));
    return [];
  }
}

/** Users with a distinct, real home directory, first listed wins (as getpwnam would). */
function homes(users: UsersFact): PasswdEntry[] {
  const seen = new Set<string>();
  const out: PasswdEntry[] = [];
  for (const u of users.users) {
    const h = path.posix.normalize(u.home || "/");
    if (h === "/" || h === "/nonexistent" || seen.has(h)) continue;
    seen.add(h);
    out.push(u);
  }
  return out;
}

function stateDirOf(r: RawUnit): string | undefined {
  const env = r.rawEnv;
  if (env.OPENCLAW_STATE_DIR) return path.posix.normalize(env.OPENCLAW_STATE_DIR);
  const home = env.OPENCLAW_HOME ?? r.home;
  if (!home) return undefined;
  const profile = r.unit.flags.profile ?? env.OPENCLAW_PROFILE;
  return path.posix.join(home, profile ? `.openclaw-${profile}` : ".openclaw");
}

function expandHome(p: string, home: string | undefined): string {
  return home && (p === "~" || p.startsWith("~/")) ? path.posix.join(home, p.slice(1)) : p;
}

/**
 * Every OpenClaw install on the system: state dirs in users' homes, and the system and user
 * units that run a gateway, with their overrides resolved (flags beat environment beat config
 * beat defaults).
 */
export function gatherOpenClaw(ctx: FactContext): Promise<Fact<OpenClawFact>> {
  return gather("/etc/passwd", async () => {
    const usersFact = await ctx.get("users");
    if (usersFact.status !== "ok")
      return usersFact.status === "skip" ? usersFact : { status: "error", problems: usersFact.problems };
    const users = usersFact.value;
    const problems: Problem[] = [];
    const sources = ["/etc/passwd"];

    const raws: RawUnit[] = [];
    const seenNames = new Set<string>();
    for (const dir of SYSTEM_UNIT_DIRS) {
      for (const name of (await listDir(ctx, dir, problems)).filter((n) => UNIT_NAME.test(n)).sort()) {
        if (seenNames.has(name)) continue; // /etc shadows /usr/lib
        seenNames.add(name);
        try {
          const r = await loadUnit(ctx, `${dir}/${name}`, "system", users, problems);
          if (r) raws.push(r);
        } catch (err) {
          problems.push(toProblem(`${dir}/${name}`, err));
        }
      }
    }
    const stateDirs = new Map<string, PasswdEntry>();
    for (const u of homes(users)) {
      const entries = await listDir(ctx, u.home, problems);
      for (const name of entries.filter((n) => STATE_DIR_NAME.test(n))) {
        const p = path.posix.join(u.home, name);
        if ((await ctx.host.stat(p))?.type === "dir") stateDirs.set(p, u);
      }
      if (!entries.includes(".config")) continue;
      const userDir = path.posix.join(u.home, USER_UNIT_DIR);
      for (const name of (await listDir(ctx, userDir, problems)).filter((n) => UNIT_NAME.test(n)).sort()) {
        try {
          const r = await loadUnit(ctx, `${userDir}/${name}`, "user", users, problems, u);
          if (r) raws.push(r);
        } catch (err) {
          problems.push(toProblem(`${userDir}/${name}`, err));
        }
      }
    }

    // A system unit runs the gateway at boot; a user unit only with lingering, so prefer the former.
    const unitFor = new Map<string, RawUnit>();
    for (const r of [...raws].sort((a, b) =>
      a.unit.scope === b.unit.scope ? 0 : a.unit.scope === "system" ? -1 : 1,
    )) {
      const dir = stateDirOf(r);
      if (dir && !unitFor.has(dir)) unitFor.set(dir, r);
    }
    const allDirs = [...new Set([...stateDirs.keys(), ...unitFor.keys()])].sort();

    const installs: OpenClawInstall[] = [];
    for (const stateDir of allDirs) {
      const r = unitFor.get(stateDir);
      const owner =
        stateDirs.get(stateDir) ??
        users.users.find((u) => stateDir.startsWith(u.home + "/") && u.home !== "/");
      const env = r?.rawEnv ?? {};
      const configPath = env.OPENCLAW_CONFIG_PATH ?? path.posix.join(stateDir, "openclaw.json");
      const stateDirExists = (await ctx.host.stat(stateDir))?.type === "dir";
      const parsed = await readOpenClawConfig(ctx, configPath, env);
      if (parsed.config) sources.push(configPath);
      const cfg = parsed.config;
      const flags = r?.unit.flags ?? {};
      const unitAt = r ? `${r.unit.path} ExecStart` : "";

      let bind = "loopback";
      let bindSource = "default (loopback)";
      if (cfg?.bind) [bind, bindSource] = [cfg.bind, `${configPath} gateway.bind`];
      if (flags.bind) [bind, bindSource] = [flags.bind, `${unitAt} --bind`];

      let port = DEFAULT_GATEWAY_PORT;
      let portSource = `default (${DEFAULT_GATEWAY_PORT})`;
      if (cfg?.port !== undefined) [port, portSource] = [cfg.port, `${configPath} gateway.port`];
      const envPort = env.OPENCLAW_GATEWAY_PORT;
      if (envPort && /^\d+$/.test(envPort))
        [port, portSource] = [
          Number(envPort),
          `${r?.unit.environmentAt.OPENCLAW_GATEWAY_PORT ?? "environment"} OPENCLAW_GATEWAY_PORT`,
        ];
      if (flags.port !== undefined) [port, portSource] = [flags.port, `${unitAt} --port`];

      const auth: OpenClawInstall["auth"] = {
        mode: cfg?.authMode,
        tokenLength: cfg?.tokenLength,
        passwordLength: cfg?.passwordLength,
        source: `${configPath} gateway.auth`,
      };
      if (env.OPENCLAW_GATEWAY_TOKEN !== undefined) {
        auth.tokenLength = env.OPENCLAW_GATEWAY_TOKEN.length;
        auth.source = `${r?.unit.environmentAt.OPENCLAW_GATEWAY_TOKEN ?? "environment"} OPENCLAW_GATEWAY_TOKEN`;
      }
      if (env.OPENCLAW_GATEWAY_PASSWORD !== undefined) {
        auth.passwordLength = env.OPENCLAW_GATEWAY_PASSWORD.length;
        auth.source = `${r?.unit.environmentAt.OPENCLAW_GATEWAY_PASSWORD ?? "environment"} OPENCLAW_GATEWAY_PASSWORD`;
      }
      // Without an explicit mode OpenClaw uses whichever secret is configured.
      auth.mode ??=
        auth.tokenLength !== undefined ? "token" : auth.passwordLength !== undefined ? "password" : undefined;

      const home = r?.home ?? owner?.home;
      const ws = parsed.workspace;
      installs.push({
        stateDir,
        configPath,
        owner: owner?.name,
        config: cfg,
        configProblem: parsed.problem,
        unit: r?.unit,
        bind,
        port,
        bindSource,
        portSource,
        runsAs: r?.unit.runsAs ?? owner?.name,
        workspace: ws ? expandHome(ws, home) : path.posix.join(stateDir, "workspace"),
        stateDirExists,
        auth,
      });
    }
    for (const r of raws) sources.push(...r.unit.sources);
    return ok({ installs, units: raws.map((r) => r.unit) }, sources, problems);
  });
}
