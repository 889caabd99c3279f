/**
 * The shield daemon's one composition root: config -> log -> policy -> proxy -> reload -> admin.
 * The admin port is bound first, so the policy the proxy starts with already refuses it as one
 * of the shield's own endpoints, whatever port it got; the policy is compiled before the proxy
 * port opens, so a config the policy rejects never serves a single request.
 */
import http from "node:http";
import { ClawguardError } from "../errors.js";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import type { ShieldConfig } from "./config.js";
import { parseShieldConfig } from "./config.js";
import { openConfiguredLog, type LogStore } from "./log/index.js";
import { systemResolver, type Resolver } from "./net/resolve.js";
import { ConfigReloader, type ReloadOutcome } from "./reload.js";
import { selfEndpoints, startShield, type RunningShield } from "./server.js";
import { ControlError, ShieldControl } from "./admin/control.js";
import { ShieldMetrics } from "./admin/metrics.js";
import { editRulesText, writeFileAtomic, type RuleEdit } from "./admin/rules-file.js";
import { loadModeOverrides, NO_OVERRIDES, saveModeOverrides, withOverrides } from "./admin/modes-file.js";
import { createAdminHandler } from "./admin/server.js";
import { readAdminToken } from "./admin/token.js";
import { SHIELD_VERSION } from "./version.js";
import { startGateway, type GatewayListeners } from "./transparent/listeners.js";

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

  const log = openConfiguredLog(cfg.log);

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
    shield = await startShield(withRealAdmin(withOverrides(cfg, saved)), {
      sink,
      resolver: opts.resolver,
      onLatency: (s) => metrics?.observeLatency(s),
    });
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
  });
  const ctl = control;
  const dropped = ctl.restoreOverrides(saved);
  if (dropped.length)
    (opts.warn ?? ((m: string) => process.stderr.write(m + "\n")))(
      `saved mode switches for ${dropped.join(", ")} dropped: the config no longer has them`,
    );
  shield.proxy.setPolicy(ctl.proxyPolicy);
  let gateway: GatewayListeners | null = null;
  if (cfg.gateway) {
    try {
      gateway = await startGateway(cfg.gateway, shield.proxy, {
        resolver: opts.resolver ?? systemResolver,
        headerTimeoutMs: cfg.limits.headerTimeoutMs,
        onDnsQuery: (agent, answer) => m.dnsQuery(agent, answer),
      });
    } catch (e) {
      adminServer?.close();
      await shield.close(0);
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new ClawguardError(
        "CG_LISTEN_FAILED",
        `cannot listen on ${cfg.gateway.listen.join(", ")} for gateway mode (${code}); gateway.listen must be the shield's own address on the agents' network`,
      );
    }
  }
  let saving: Promise<void> = Promise.resolve();
  const saveModes = (): Promise<void> => {
    const file = cfg.admin?.stateFile;
    if (!file) return Promise.resolve();
    // One write at a time, each with the switches as they are when it starts.
    saving = saving.catch(() => undefined).then(() => saveModeOverrides(file, ctl.modes().overrides));
    return saving;
  };

  const counted = {
    apply: (c: Parameters<ShieldControl["apply"]>[0], trigger: string) => {
      const r = ctl.apply(c, trigger);
      m.reloaded(true);
      return r;
    },
    reloadFailed: (trigger: string, error: string) => {
      m.reloaded(false);
      ctl.reloadFailed(trigger, error);
    },
  };
  const reloader = new ConfigReloader(cfg.file, counted, {
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
      reload: (trigger) => reloader.reload(trigger, true),
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
        // Side by side: the proxy's close cuts what is left on the transparent HTTP port too.
        await Promise.all([gateway?.close(), shield.close(graceMs)]);
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
