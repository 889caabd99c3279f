/**
 * The admin API as a client sees it: where it listens and which token opens it (flags, the
 * environment, or the shield's own config), and one call. The CLI's shield commands and
 * `shield check --live` ask the running shield through here.
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { ClawguardError, ConfigError, FileUnreadableError, UsageError } from "../../errors.js";
import { parseYaml, readConfigText } from "../../yaml/read.js";
import { parseEndpoint } from "../config.js";
import { DEFAULT_ADMIN_LISTEN } from "../config-schema.js";

export interface ApiFlags {
  admin?: string;
  tokenFile?: string;
  config?: string;
  json?: boolean;
}

interface Connection {
  base: URL;
  token: string;
}

export const DEFAULT_CONFIG = "/etc/clawguard/shield.yaml";

/** Where an operator keeps their own token: readable by them alone. */
export function userTokenFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || homedir(), ".config");
  return path.join(base, "clawguard", "shield-token");
}

/**
 * An operator's token without the shield's config: --token-file, then CLAWGUARD_SHIELD_TOKEN
 * (the token itself), CLAWGUARD_ADMIN_TOKEN_FILE, then the per-user file. An operator never
 * needs to read or edit the shield's own files to log in.
 */
async function tokenWithoutConfig(flags: ApiFlags): Promise<{ token: string } | { file: string } | null> {
  if (flags.tokenFile !== undefined) return { file: flags.tokenFile };
  const given = process.env.CLAWGUARD_SHIELD_TOKEN?.trim();
  if (given) return { token: given };
  if (process.env.CLAWGUARD_ADMIN_TOKEN_FILE) return { file: process.env.CLAWGUARD_ADMIN_TOKEN_FILE };
  const mine = userTokenFile();
  const st = await stat(mine).catch(() => null);
  if (!st) return null;
  if ((st.mode & 0o077) !== 0)
    throw new ClawguardError(
      "CG_ADMIN_TOKEN_INVALID",
      `others can read it (mode ${(st.mode & 0o777).toString(8)})`,
      {
        where: mine,
        hint: `chmod 600 ${mine}`,
      },
    );
  return { file: mine };
}

/**
 * `admin.listen` and `admin.token_file` of a shield.yaml, and nothing else of it. The admin
 * commands are how an operator looks at a running shield while its file is being edited, so a
 * mistake elsewhere in the file (an agent, a rule) must not lock them out; only these two keys
 * are read, and a problem in them names its line.
 */
async function adminAccess(file: string): Promise<{ url: string; tokenFile: string | undefined }> {
  const text = await readConfigText(file, "pass --config FILE, or --admin URL and --token-file FILE");
  const { data, loc } = parseYaml(text, file, {
    list: false,
    reason: "a shield config is a map of settings (listen, log, admin, agents, ...)",
    empty: {},
  });
  const admin = (data as Record<string, unknown>).admin;
  const refuse = (key: string, reason: string) =>
    new ConfigError(file, [{ keyPath: `admin.${key}`, line: loc.line(["admin", key]), reason }], {
      hint: "fix the line, or pass --admin URL and --token-file FILE",
    });
  if (admin === undefined || admin === null)
    throw new UsageError(`${file} has no admin section, so the shield serves no admin API`);
  if (typeof admin !== "object" || Array.isArray(admin))
    throw new ConfigError(file, [{ keyPath: "admin", line: loc.line(["admin"]), reason: "must be a map" }]);
  const { listen = DEFAULT_ADMIN_LISTEN, token_file: token } = admin as Record<string, unknown>;
  const at = typeof listen === "string" ? parseEndpoint(listen) : "must be HOST:PORT";
  if (typeof at === "string") throw refuse("listen", at);
  if (token !== undefined && (typeof token !== "string" || token === ""))
    throw refuse("token_file", "must be a file name");
  // A wildcard listener is reached on this host's loopback.
  const reach = at.host === "0.0.0.0" ? "127.0.0.1" : at.host === "::" ? "::1" : at.host;
  return {
    url: `http://${reach.includes(":") ? `[${reach}]` : reach}:${at.port}`,
    tokenFile: token === undefined ? undefined : path.resolve(path.dirname(path.resolve(file)), token),
  };
}

/** Address and token: flags, then the environment, then the per-user token, then the shield's config file. */
async function connect(flags: ApiFlags): Promise<Connection> {
  let url = flags.admin ?? process.env.CLAWGUARD_ADMIN_URL;
  const found = await tokenWithoutConfig(flags);
  let tokenFile = found && "file" in found ? found.file : undefined;
  const configFile = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if ((url === undefined || found === null) && configFile !== undefined) {
    const access = await adminAccess(configFile);
    url ??= access.url;
    tokenFile ??= access.tokenFile;
  }
  if (url === undefined) {
    throw new UsageError(
      "no admin API address: pass --admin URL, set CLAWGUARD_ADMIN_URL, or pass --config shield.yaml",
    );
  }
  if (tokenFile === undefined && !(found && "token" in found)) {
    throw new UsageError(
      `no operator token: pass --token-file FILE, set CLAWGUARD_SHIELD_TOKEN, keep it in ${userTokenFile()} (mode 600), or pass --config shield.yaml`,
    );
  }
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new UsageError(`--admin "${url}" is not a URL (e.g. http://127.0.0.1:9090)`);
  }
  if (found && "token" in found) return { base, token: found.token };
  let token: string;
  try {
    token = (await readFile(tokenFile!, "utf8")).trim();
  } catch (e) {
    throw new FileUnreadableError(
      tokenFile!,
      `cannot read the admin token file (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  return { base, token };
}

export async function call(
  flags: ApiFlags,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const c = await connect(flags);
  const url = new URL(path, c.base);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${c.token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new ClawguardError(
      "CG_ADMIN_UNREACHABLE",
      `the admin API at ${c.base.origin} is unreachable (${cause}); is the shield running, and the SSH tunnel open?`,
    );
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON: reported below through the status.
  }
  if (res.status === 401) {
    throw new ClawguardError(
      "CG_ADMIN_REFUSED",
      `the admin API at ${c.base.origin} refused the token; check --token-file or admin.token_file`,
    );
  }
  if (!res.ok) {
    const field = typeof json.field === "string" ? ` (${json.field})` : "";
    throw new ClawguardError(
      "CG_ADMIN_FAILED",
      `${method} ${path}: HTTP ${res.status}${field}: ${String(json.error ?? text.slice(0, 200))}`,
    );
  }
  return json;
}
