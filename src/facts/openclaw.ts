import JSON5 from "json5";
import type { Problem } from "./fact.js";

/** A systemd unit (system or user) that runs an OpenClaw gateway. */
export interface GatewayUnit {
  /** Path of the unit file on the audited system. */
  path: string;
  scope: "system" | "user";
  /** For user units: the user whose ~/.config/systemd/user holds it. */
  owner?: string;
  /** Every directive of [Service] (and [Unit]/[Install]) after drop-ins, in order, key -> values. */
  directives: Record<string, string[]>;
  execStart: string;
  /** `User=` of a system unit (undefined means root), the owner for a user unit. */
  runsAs: string;
  environment: Record<string, string>;
  /** Flags read from ExecStart: --bind, --port, --profile. */
  flags: { bind?: string; port?: number; profile?: string };
  enabled: boolean;
  /** Unit name, e.g. openclaw-gateway.service. */
  name: string;
  /** The unit file, then the drop-ins that changed it. */
  sources: string[];
  /** Directive -> "path:line" of the assignment that decided its value. */
  directiveAt: Record<string, string>;
  /** Environment variable -> "path:line" (Environment= or the EnvironmentFile line) that set it. */
  environmentAt: Record<string, string>;
}

/** The gateway settings that matter for security, from openclaw.json (JSON5). */
export interface GatewayConfig {
  bind?: string;
  customBindHost?: string;
  port?: number;
  authMode?: string;
  /** Length only: the token itself never leaves the gatherer. */
  tokenLength?: number;
  passwordLength?: number;
}

export interface OpenClawInstall {
  /** State dir, e.g. /home/claw/.openclaw (or OPENCLAW_STATE_DIR / --profile variants). */
  stateDir: string;
  configPath: string;
  /** The user whose home holds the state dir, when any. */
  owner?: string;
  /** Parsed config, or undefined when missing/unreadable (then configProblem says why). */
  config?: GatewayConfig;
  configProblem?: Problem;
  /** The unit that runs this install, when one was found. */
  unit?: GatewayUnit;
  /** Effective settings: flags beat environment beat config beat defaults. */
  bind: string;
  port: number;
  /** Where `bind` and `port` came from, e.g. "ExecStart --bind" or "openclaw.json gateway.bind". */
  bindSource: string;
  portSource: string;
  /** User the gateway runs as: the unit's, else the owner of the state dir. */
  runsAs?: string;
  workspace?: string;
  /** Whether the state dir exists (a unit may point at one that was never created). */
  stateDirExists: boolean;
  /** Effective auth: env (OPENCLAW_GATEWAY_TOKEN / _PASSWORD) beats config. Lengths only. */
  auth: { mode?: string; tokenLength?: number; passwordLength?: number; source: string };
}

export interface OpenClawFact {
  installs: OpenClawInstall[];
  /** Every gateway unit found, also those matched to no state dir. */
  units: GatewayUnit[];
}

export const DEFAULT_GATEWAY_PORT = 18789;

const SECRET_KEY = /TOKEN|PASSWORD|PASSWD|SECRET|API_?KEY|PRIVATE|CREDENTIAL/i;

/** Values that could be secrets never leave the gatherer: only their length does. */
export function redactEnvValue(key: string, value: string): string {
  if (SECRET_KEY.test(key)) return `<redacted, ${value.length} chars>`;
  // Proxy URLs may carry user:password@.
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1<redacted>@");
}

/** Pull the security-relevant gateway settings out of parsed openclaw.json. */
export function extractGatewayConfig(doc: unknown, env: Record<string, string> = {}): GatewayConfig {
  const obj = (v: unknown): Record<string, unknown> | undefined =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const gw = obj(obj(doc)?.gateway);
  const auth = obj(gw?.auth);
  // OpenClaw substitutes ${VAR} in config strings from the environment.
  const secretLength = (v: unknown): number | undefined => {
    if (typeof v !== "string") return undefined;
    const ref = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(v);
    if (ref) return env[ref[1]!]?.length ?? 0;
    return v.length;
  };
  const port = gw?.port;
  return {
    bind: typeof gw?.bind === "string" ? gw.bind : undefined,
    customBindHost: typeof gw?.customBindHost === "string" ? gw.customBindHost : undefined,
    port:
      typeof port === "number"
        ? port
        : typeof port === "string" && /^\d+$/.test(port)
          ? Number(port)
          : undefined,
    authMode: typeof auth?.mode === "string" ? auth.mode : undefined,
    tokenLength: secretLength(auth?.token),
    passwordLength: secretLength(auth?.password),
  };
}

function workspaceOf(doc: unknown): string | undefined {
  const d = doc as {
    agents?: { defaults?: { workspace?: unknown } };
    agent?: { workspace?: unknown };
  } | null;
  const w = d?.agents?.defaults?.workspace ?? d?.agent?.workspace;
  return typeof w === "string" ? w : undefined;
}

export interface ParsedConfig {
  config?: GatewayConfig;
  problem?: Problem;
  workspace?: string;
}

/** Parse openclaw.json's text; a malformed file is a problem naming the file and line. */
export function parseOpenClawConfig(
  text: string,
  configPath: string,
  env: Record<string, string>,
): ParsedConfig {
  try {
    const doc: unknown = JSON5.parse(text);
    return { config: extractGatewayConfig(doc, env), workspace: workspaceOf(doc) };
  } catch (err) {
    const e = err as SyntaxError & { lineNumber?: number; columnNumber?: number };
    const message = e.message.replace(/^JSON5: /, "").replace(/ at \d+:\d+$/, "");
    return {
      problem: {
        kind: "malformed",
        source: configPath,
        line: e.lineNumber,
        message: `not valid JSON5: ${message}${e.columnNumber !== undefined ? ` (column ${e.columnNumber})` : ""}; fix the file or run "openclaw doctor"`,
      },
    };
  }
}

/** The bind address a setting resolves to, for deciding exposure. */
export function bindIsLoopback(bind: string, customBindHost?: string): boolean {
  if (bind === "loopback" || bind === "localhost") return true;
  if (bind === "custom") return customBindHost !== undefined && isLoopbackHost(customBindHost);
  return isLoopbackHost(bind);
}

function isLoopbackHost(h: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === "::1" || h === "[::1]" || h === "localhost";
}
