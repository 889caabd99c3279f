import type { Problem } from "../errors.js";

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
