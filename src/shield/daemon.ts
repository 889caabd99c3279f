/**
 * The shield daemon's one composition root: config -> store -> log -> policy -> proxy -> reload ->
 * admin.
 * The admin port is bound first, so the policy the proxy starts with already refuses it as one
 * of the shield's own endpoints, whatever port it got; the policy is compiled before the proxy
 * port opens, so a config the policy rejects never serves a single request. A shared store is
 * opened before either: a shield that cannot have its policy never listens.
 */
import http from "node:http";
import { ClawguardError } from "../errors.js";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import type { ShieldConfig } from "./config.js";
import { parseShieldConfig } from "./config.js";
import { openConfiguredLog, type LogStore } from "./log/index.js";
import { systemResolver, type Resolver } from "./net/resolve.js";
import type { Authors } from "./membership.js";
import { readAuthors } from "./membership-journal.js";
import { ConfigReloader, type ReloadOutcome, type ReloadTarget } from "./reload.js";
import { selfEndpoints, startShield, type RunningShield } from "./server.js";
import { ControlError, ShieldControl } from "./admin/control.js";
import { ShieldMetrics } from "./admin/metrics.js";
import { editRulesText, writeFileAtomic, type RuleEdit } from "./admin/rules-file.js";
import { saveModeOverrides, withOverrides } from "./admin/modes-file.js";
import { createAdminHandler } from "./admin/server.js";
import { preflightShield } from "./preflight.js";
import { SHIELD_VERSION } from "./version.js";
import { WireguardView } from "./admin/wireguard.js";
import { caDirOf, SshCa } from "./ssh/ca.js";
import { startKrlServer } from "./ssh/krl-server.js";
import { startGateway, type GatewayListeners } from "./transparent/listeners.js";
import { BudgetShare, SharedStore, SqliteState, statePath, withPolicy } from "./store/index.js";
import { sharedAdmin, storeReloadTarget } from "./store/admin.js";
import { registerStoreMetrics } from "./store/metrics.js";
import { SharedSshCa } from "./store/pg-grants.js";

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
  /** Where enrolled agents fetch the KRL, or null when it is not served. */
  readonly krl: AddressInfo | null;
  reload(trigger: string, force?: boolean): Promise<ReloadOutcome>;
  close(graceMs?: number): Promise<void>;
}

export async function startManagedShield(
  cfg: ShieldConfig,
  opts: ManagedShieldOptions = {},
): Promise<ManagedShield> {
  // Token, saved mode switches and policy, checked as `shield check` checks them.
  const preflight = await preflightShield(cfg);
  const tokenSha256 = preflight.tokenSha256;
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`clawguard shield: ${m}\n`));
  const local = cfg;
  const shared = cfg.store ? await SharedStore.open(cfg, warn) : null;
  // Sharing a store, the policy in force is the store's; the file's own settings stay.
  if (shared) cfg = withPolicy(cfg, shared.doc);
  // Mode switches an operator made through the API before a restart (a lockdown, say) hold
  // from the first connection on: the store's when there is one.
  const saved = shared ? shared.doc.overrides : preflight.saved;

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
      async (err: unknown) => {
        await shared?.close();
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
  // Budget counts of earlier runs (and, sharing a store, of the other nodes) before any request.
  const budgets = shared?.budgets ?? new BudgetShare(new SqliteState(statePath(cfg.log.path)));
  await budgets.start();
  const stopStores = async () => {
    await (shared ? shared.close() : budgets.close()).catch(() => undefined);
  };

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
    await stopStores();
    throw e;
  }
  shield.proxy.budgets.share(budgets);
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
    // Straight to the store: an enrolment or a revocation is no decision to count or stream.
    onMembership: (records) => records.forEach((r) => log.append(r)),
  });
  const ctl = control;
  const wireguard = new WireguardView(() => ctl.cfg);
  wireguard.register(m.registry);
  const dropped = ctl.restoreOverrides(saved);
  if (dropped.length)
    warn(`saved mode switches for ${dropped.join(", ")} dropped: the config no longer has them`);
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
      await stopStores();
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

  let localNow = local;
  const target: ReloadTarget = shared ? storeReloadTarget(ctl, shared, (c) => (localNow = c)) : ctl;
  // Each reload, applied or refused, is counted for /metrics.
  const counted: ReloadTarget = {
    apply: (c, trigger, authors) => {
      const r = target.apply(c, trigger, authors);
      m.reloaded(true);
      return r;
    },
    reloadFailed: (trigger, error) => {
      m.reloaded(false);
      target.reloadFailed(trigger, error);
    },
  };
  const reloader = new ConfigReloader(cfg.file, counted, {
    // Who enrolled or revoked on the host with the CLI: the journal beside the file names them.
    authors: (sha256) => readAuthors(cfg.file, sha256),
    ...(opts.warn ? { warn: opts.warn } : {}),
    ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
  });
  reloader.loaded(await readFile(cfg.file, "utf8").catch(() => ""));
  if (opts.watch !== false) reloader.watch();

  const store = shared
    ? sharedAdmin(shared, ctl, {
        apply: (doc) => {
          ctl.apply(withPolicy(localNow, doc), `store revision ${doc.revision}`);
          ctl.restoreOverrides(doc.overrides);
        },
      })
    : null;
  if (shared) registerStoreMetrics(m.registry, () => shared.health());
  if (shared && store)
    await shared.start({
      logPath: cfg.log.path,
      retentionDays: cfg.log.retentionDays,
      version: SHIELD_VERSION,
      proxy: `${shield.address.address}:${proxyPort}`,
      apply: store.applyDoc,
      warn,
    });
  // Sharing a store, grants and the KRL are the store's; the CA key, if any, stays here.
  const sshCa = new SshCa(caDirOf(cfg.file));
  const sharedCa = shared ? new SharedSshCa(shared.pool, sshCa, shared.node, warn) : null;
  await sharedCa?.start();
  /**
   * Change shield.yaml through the API: the edit is made on the file's text (layout and
   * comments kept), must pass the validation a reload applies, replaces the file atomically, and
   * is applied at once, all under the reloader's lock so a file watch event cannot interleave.
   */
  const editConfig = (trigger: string, edit: (text: string) => string, field: string, authors?: Authors) =>
    reloader.exclusive(async () => {
      const before = await readFile(cfg.file, "utf8").catch((e: NodeJS.ErrnoException) => {
        throw new ControlError(409, null, `cannot read ${cfg.file} (${e.code ?? e.message})`);
      });
      const after = edit(before);
      let next: ShieldConfig;
      try {
        next = parseShieldConfig(after, cfg.file);
      } catch (e) {
        throw new ControlError(400, field, e instanceof Error ? e.message : String(e));
      }
      await writeFileAtomic(cfg.file, after);
      reloader.loaded(after);
      const r = ctl.apply(next, trigger, authors);
      return { tunnelsClosed: r.tunnelsClosed };
    });
  const editRule = (edit: RuleEdit, op: "add" | "remove", by: string) =>
    store
      ? store.editRule(edit, op)
      : editConfig(`api ${op} rule by ${by}`, (text) => editRulesText(text, edit, op), "rule");

  if (adminServer) {
    handler = createAdminHandler({
      control: ctl,
      metrics: m,
      log,
      adminTokenSha256: tokenSha256,
      version: SHIELD_VERSION,
      editRule,
      editConfig,
      reload: (trigger) => reloader.reload(trigger, true),
      saveModes: store ? store.saveMode : saveModes,
      ...(store ? { store: store.admin, log: { query: store.queryLog } } : {}),
      // Straight to the store, as membership is: a change is no decision to count or stream.
      record: (r) => log.append(r),
      sshCa: sharedCa ?? sshCa,
      resolver: opts.resolver ?? systemResolver,
      tunnels: () => wireguard.tunnels(),
    });
  }

  // Agents keep their last KRL and audit says how old it is: a listener that cannot bind is
  // said, and the proxy serves on.
  let krl: { server: http.Server; address: AddressInfo } | null = null;
  const krlListen = cfg.sshAccess.krlListen;
  if (krlListen) {
    krl = await startKrlServer(krlListen.host, krlListen.port, {
      file: sshCa.krlFile,
      identify: (address) => ctl.policy.identify(address)?.id ?? null,
    }).catch((e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      warn(
        `cannot listen on ${krlListen.host}:${krlListen.port} for the SSH KRL (${code}): agents keep the KRL they have; set ssh_access.krl_listen`,
      );
      return null;
    });
  }

  let closing: Promise<void> | null = null;
  return {
    shield,
    control: ctl,
    metrics: m,
    log,
    admin: adminAddress,
    krl: krl?.address ?? null,
    reload: (trigger, force) => reloader.reload(trigger, force),
    close(graceMs?: number) {
      closing ??= (async () => {
        reloader.close();
        if (krl) {
          krl.server.close();
          krl.server.closeAllConnections();
        }
        if (adminServer) {
          const closed = new Promise<void>((resolve) => adminServer?.close(() => resolve()));
          adminServer.closeAllConnections();
          await closed;
        }
        // Side by side: the proxy's close cuts what is left on the transparent HTTP port too.
        await Promise.all([gateway?.close(), shield.close(graceMs)]);
        await sharedCa?.close();
        await stopStores();
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
