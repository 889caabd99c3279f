/**
 * The shield with its control plane: proxy, audit log, hot reload and (when `admin` is in the
 * config) the admin listener. The admin port is bound first, so the policy the proxy starts
 * with already refuses it as one of the shield's own endpoints, whatever port it got.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { ClawguardError, FileUnreadableError } from "../../errors.js";
import type { ShieldConfig } from "../config.js";
import { parseShieldConfig } from "../config.js";
import { openLogStore, type LogStore } from "../log/index.js";
import { systemResolver, type Resolver } from "../net/resolve.js";
import { ConfigReloader, type ReloadOutcome } from "../reload.js";
import { selfEndpoints, startShield, type RunningShield } from "../server.js";
import { ShieldControl } from "./control.js";
import { ShieldMetrics } from "./metrics.js";
import { editRulesText, writeFileAtomic, type RuleEdit } from "./rules-file.js";
import { loadModeOverrides, NO_OVERRIDES, saveModeOverrides, withOverrides } from "./modes-file.js";
import { createAdminHandler } from "./server.js";
import { ControlError } from "./control.js";

export const SHIELD_VERSION = (createRequire(import.meta.url)("../../../package.json") as { version: string })
  .version;

export interface ManagedShieldOptions {
  resolver?: Resolver;
  /** Watch the config file for changes (on by default). */
  watch?: boolean;
  /** Where reload problems are reported; stderr by default. */
  warn?: (message: string) => void;
  /** Debounce of the file watch, ms. */
  debounceMs?: number;
}

export interface ManagedShield {
  readonly shield: RunningShield;
  readonly control: ShieldControl;
  readonly metrics: ShieldMetrics;
  readonly log: LogStore;
  /** Where the admin API listens, or null when the config has no `admin` section. */
  readonly admin: AddressInfo | null;
  reload(trigger: string, force?: boolean): Promise<ReloadOutcome>;
  close(graceMs?: number): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MIN_TOKEN_CHARS = 16;

/**
 * Read the admin token: the file must exist, be readable by the owner only and hold at least
 * 16 characters. Anything else stops the shield; an admin API with a guessable or shared
 * token would be worse than none.
 */
export async function readAdminToken(file: string | undefined): Promise<Buffer> {
  if (file === undefined) {
    throw new ClawguardError(
      "CG_ADMIN_TOKEN_INVALID",
      "admin.token_file is not set: the admin API never runs without a token. Add admin.token_file to the config (clawguard shield install writes one), or remove the admin section",
    );
  }
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) {
      throw new ClawguardError(
        "CG_ADMIN_TOKEN_INVALID",
        `${file}: the admin token file is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
      );
    }
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined || e instanceof ClawguardError) throw e;
    throw new FileUnreadableError(
      file,
      `cannot read the admin token file (${code}); create it with: umask 077; openssl rand -hex 32 > ${file}`,
    );
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_CHARS || /\s/.test(token)) {
    throw new ClawguardError(
      "CG_ADMIN_TOKEN_INVALID",
      `${file}: the admin token must be one word of at least ${MIN_TOKEN_CHARS} characters; write a new one with: openssl rand -hex 32 > ${file}`,
    );
  }
  return createHash("sha256").update(token).digest();
}

export async function startManagedShield(
  cfg: ShieldConfig,
  opts: ManagedShieldOptions = {},
): Promise<ManagedShield> {
  const tokenSha256 = cfg.admin ? await readAdminToken(cfg.admin.tokenFile) : null;
  // Mode switches an operator made through the API before a restart (a lockdown, say) hold
  // from the first connection on; a file that cannot be read stops the start.
  const saved = cfg.admin ? await loadModeOverrides(cfg.admin.stateFile) : NO_OVERRIDES;

  // Bind the admin port before anything serves; the API is wired once the proxy runs.
  let adminServer: http.Server | null = null;
  let adminAddress: AddressInfo | null = null;
  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | null = null;
  if (cfg.admin) {
    adminServer = http.createServer({ maxHeaderSize: 16 * 1024, headersTimeout: 10_000 }, (req, res) => {
      if (handler) return handler(req, res);
      res.writeHead(503, { "content-type": "application/json" }).end('{"error":"starting"}\n');
    });
    adminAddress = await listen(adminServer, cfg.admin.listen.host, cfg.admin.listen.port).catch(
      (err: unknown) => {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new ClawguardError(
          "CG_LISTEN_FAILED",
          `cannot listen on ${cfg.admin?.listen.host}:${cfg.admin?.listen.port} for the admin API (${code}); change admin.listen in the config or stop what holds the port`,
        );
      },
    );
  }
  const adminPort = adminAddress?.port;
  const withRealAdmin = (c: ShieldConfig): ShieldConfig =>
    c.admin && adminPort !== undefined
      ? { ...c, admin: { ...c.admin, listen: { ...c.admin.listen, port: adminPort } } }
      : c;

  const log = openLogStore(cfg.log.path, {
    retention:
      cfg.log.retentionDays !== undefined || cfg.log.maxBytes !== undefined
        ? {
            olderThanMs: cfg.log.retentionDays !== undefined ? cfg.log.retentionDays * DAY_MS : undefined,
            maxBytes: cfg.log.maxBytes,
          }
        : undefined,
  });

  let control: ShieldControl | null = null;
  let metrics: ShieldMetrics | null = null;
  const sink = {
    append: (r: Parameters<LogStore["append"]>[0]) => {
      log.append(r);
      metrics?.record(r);
      control?.observe(r);
    },
    flush: () => log.flush(),
    close: () => log.close(),
  };
  let shield: RunningShield;
  try {
    shield = await startShield(withRealAdmin(withOverrides(cfg, saved)), { sink, resolver: opts.resolver });
  } catch (e) {
    adminServer?.close();
    await log.close().catch(() => undefined);
    throw e;
  }
  const proxyPort = shield.address.port;
  metrics = new ShieldMetrics(
    () => control?.openTunnels() ?? 0,
    () => log.stats(),
  );
  const m = metrics;
  control = new ShieldControl({
    cfg,
    proxy: shield.proxy,
    endpoints: (c) => selfEndpoints(withRealAdmin(c), proxyPort),
    onLatency: (s) => m.observeLatency(s),
  });
  const ctl = control;
  const dropped = ctl.restoreOverrides(saved);
  if (dropped.length)
    (opts.warn ?? ((m: string) => process.stderr.write(m + "\n")))(
      `saved mode switches for ${dropped.join(", ")} dropped: the config no longer has them`,
    );
  shield.proxy.setPolicy(ctl.proxyPolicy);
  let saving: Promise<void> = Promise.resolve();
  const saveModes = (): Promise<void> => {
    const file = cfg.admin?.stateFile;
    if (!file) return Promise.resolve();
    // One write at a time, each with the switches as they are when it starts.
    saving = saving.catch(() => undefined).then(() => saveModeOverrides(file, ctl.modes().overrides));
    return saving;
  };

  const reloader = new ConfigReloader(cfg.file, ctl, {
    ...(opts.warn ? { warn: opts.warn } : {}),
    ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
  });
  reloader.loaded(await readFile(cfg.file, "utf8").catch(() => ""));
  if (opts.watch !== false) reloader.watch();

  const editRule = (edit: RuleEdit, op: "add" | "remove") =>
    reloader.exclusive(async () => {
      const before = await readFile(cfg.file, "utf8").catch((e: NodeJS.ErrnoException) => {
        throw new ControlError(409, null, `cannot read ${cfg.file} (${e.code ?? e.message})`);
      });
      const after = editRulesText(before, edit, op);
      let next: ShieldConfig;
      try {
        next = parseShieldConfig(after, cfg.file);
      } catch (e) {
        throw new ControlError(400, "rule", e instanceof Error ? e.message : String(e));
      }
      await writeFileAtomic(cfg.file, after);
      reloader.loaded(after);
      const r = ctl.apply(next, `api ${op} rule`);
      return { tunnelsClosed: r.tunnelsClosed };
    });

  if (adminServer && tokenSha256) {
    handler = createAdminHandler({
      control: ctl,
      metrics: m,
      log,
      tokenSha256,
      version: SHIELD_VERSION,
      editRule,
      saveModes,
      resolver: opts.resolver ?? systemResolver,
    });
  }

  let closing: Promise<void> | null = null;
  return {
    shield,
    control: ctl,
    metrics: m,
    log,
    admin: adminAddress,
    reload: (trigger, force) => reloader.reload(trigger, force),
    close(graceMs?: number) {
      closing ??= (async () => {
        reloader.close();
        if (adminServer) {
          const closed = new Promise<void>((resolve) => adminServer?.close(() => resolve()));
          adminServer.closeAllConnections();
          await closed;
        }
        await shield.close(graceMs);
      })();
      return closing;
    },
  };
}

function listen(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
