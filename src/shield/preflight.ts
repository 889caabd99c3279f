/**
 * What `shield run` must find in order before it binds a port or opens the log: the admin
 * token file, the mode switches saved through the admin API, and a policy the config compiles
 * to. `shield check` asks the same function, so a config it calls valid is one the shield
 * starts with.
 */
import type { ShieldConfig } from "./config.js";
import type { Overrides } from "./admin/control.js";
import { loadModeOverrides, NO_OVERRIDES, withOverrides } from "./admin/modes-file.js";
import { readAdminToken } from "./admin/token.js";
import { Policy } from "./policy/index.js";
import { selfEndpoints } from "./server.js";

export interface Preflight {
  /**
   * sha256 of the admin token file's token, or null: no admin section, or named operators and
   * no token file (the admin API never runs with nobody able to open it).
   */
  tokenSha256: Buffer | null;
  /** Mode switches saved through the admin API; they hold from the first connection on. */
  saved: Overrides;
}

export async function preflightShield(cfg: ShieldConfig): Promise<Preflight> {
  const tokenSha256 =
    cfg.admin && (cfg.admin.tokenFile !== undefined || cfg.operators.length === 0)
      ? await readAdminToken(cfg.admin.tokenFile)
      : null;
  // A saved file that cannot be read stops the start: a lockdown must not lift on a restart.
  const saved = cfg.admin ? await loadModeOverrides(cfg.admin.stateFile) : NO_OVERRIDES;
  Policy.compile(withOverrides(cfg, saved), { endpoints: selfEndpoints(cfg, cfg.listen.port) });
  return { tokenSha256, saved };
}
