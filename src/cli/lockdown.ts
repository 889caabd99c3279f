import { InvalidArgumentError, Option, type Command } from "commander";
import pc from "picocolors";
import { LocalWriter } from "../host/writer.js";
import type { Step } from "../change/ruleset.js";
import {
  applyLockdown,
  recordedShield,
  rollbackLockdown,
  type ApplyReport,
  type RollbackReport,
} from "../lockdown/apply.js";
import { detectBackend } from "../lockdown/live.js";
import { planLockdown, shownPlan, type LockdownPlan } from "../lockdown/plan.js";
import type { Backend } from "../lockdown/units.js";
import { AGENT_KEY_FILE, applyJoin, DEFAULT_INTERFACE, keygen, prepareJoin } from "../lockdown/join.js";
import {
  LockdownInputError,
  parseAllowOut,
  parseHostPort,
  parseIp,
  parsePort,
  pinShield,
  type HostPort,
} from "../lockdown/spec.js";
import { DEFAULT_DIRECT_PROBES, resolversOf, verifyLockdown, type VerifyReport } from "../lockdown/verify.js";
import type { EgressAllow } from "../render/nftables.js";
import { wantColor } from "./report.js";
import { hostAt } from "./root.js";
import { thisClawguard } from "./profile-flags.js";

interface LockdownFlags {
  shield?: string;
  apply?: boolean;
  verify?: boolean;
  root: string;
  sshPort?: number[];
  allowOut?: EgressAllow[];
  allowDns?: string[];
  allowDhcp?: boolean;
  log: boolean;
  forward: boolean;
  filesOnly?: boolean;
  load?: boolean;
  probe?: HostPort[];
  probeViaShield?: string;
  dns?: string[];
  proxyUser?: string;
  timeout: number;
  json?: boolean;
  backend?: Backend;
  join?: string;
  interface: string;
  keyFile: string;
  handshakeTimeout: number;
}

const collect =
  <T>(parse: (v: string) => T) =>
  (v: string, prev: T[] | undefined): T[] => {
    try {
      return [...(prev ?? []), parse(v)];
    } catch (err) {
      throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
    }
  };

function out(json: boolean | undefined, data: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + "\n" : text());
}

function paint() {
  return pc.createColors(wantColor(process.stdout));
}

function stepLines(steps: Step[]): string[] {
  const c = paint();
  return steps.map(
    (s) =>
      `  ${s.ok ? c.green("ok  ") : c.red("FAIL")} ${s.command}${s.detail ? c.dim(`  (${s.detail})`) : ""}`,
  );
}

export function renderPlanText(plan: LockdownPlan): string {
  const c = paint();
  const o: string[] = [];
  o.push(c.bold(`clawguard lockdown: plan for ${plan.root} (${plan.backend})`));
  o.push(
    `shield ${plan.shield.addresses.map((a) => (a.includes(":") ? `[${a}]` : a)).join(", ")} port ${plan.shield.port}` +
      `${plan.shield.pinned ? ` (${plan.shield.host}, pinned)` : ""}; proxy URL ${plan.shield.proxyUrl}`,
  );
  o.push(`SSH ports kept for replies: ${plan.sshPorts.ports.join(", ")} (${plan.sshPorts.source})`, "");
  for (const f of plan.files) {
    o.push(c.bold(`${f.path}`) + c.dim(`  ${f.why}`));
    o.push(f.diff ? f.diff.trimEnd() : c.dim("  unchanged"), "");
  }
  for (const l of plan.links)
    o.push(
      c.bold(l.path) + c.dim("  enables the unit"),
      l.before === l.target ? c.dim("  unchanged") : `  ln -sf ${l.target} ${l.path}`,
      "",
    );
  o.push(
    plan.gatewayUnits.length
      ? `gateway: ${plan.gatewayUnits.join(", ")} gets the proxy drop-in and is restarted`
      : `gateway: skipped (${plan.gatewaySkipped ?? "none found"})`,
  );
  for (const w of plan.warnings) o.push(c.yellow(`warning: ${w}`));
  for (const n of plan.notes) o.push(`note: ${n}`);
  o.push("", c.dim("Nothing was changed. Run again with --apply, then --verify."));
  return o.join("\n") + "\n";
}

function renderApplyText(plan: LockdownPlan, r: ApplyReport): string {
  const c = paint();
  const o = [
    c.bold(
      `clawguard lockdown: applied to ${r.root}` +
        (r.runId ? ` (run ${r.runId}; undo with: clawguard lockdown rollback)` : " (nothing to change)"),
    ),
  ];
  for (const p of r.written) o.push(`  wrote ${p}`);
  for (const p of r.unchanged) o.push(c.dim(`  unchanged ${p}`));
  o.push(...stepLines(r.steps));
  for (const w of plan.warnings) o.push(c.yellow(`warning: ${w}`));
  for (const n of r.notes) o.push(`note: ${n}`);
  o.push(
    r.steps.length > 0
      ? c.dim("Check it from this side: clawguard lockdown --verify")
      : c.dim(`Nothing was loaded into this machine: the rules load when the system at ${r.root} boots.`),
  );
  return o.join("\n") + "\n";
}

function renderVerifyText(r: VerifyReport): string {
  const c = paint();
  const o = r.probes.map(
    (p) => `  ${p.held ? c.green("PASS") : c.red("FAIL")} ${p.id.padEnd(10)} ${p.target}: ${p.outcome}`,
  );
  o.push(r.ok ? c.green("lockdown holds") : c.red("lockdown does NOT hold"));
  return o.join("\n") + "\n";
}

function renderRollbackText(r: RollbackReport): string {
  const c = paint();
  const o = [c.bold(`clawguard lockdown rollback: ${r.root}`)];
  if (r.nothingRecorded) o.push(c.dim("  no lockdown run recorded; only the live rules were looked for"));
  for (const id of r.runs) o.push(`  undid run ${id}`);
  for (const x of r.restored) o.push(`  ${x.to === "absent" ? "removed" : "restored"} ${x.path}`);
  o.push(...stepLines(r.steps));
  for (const p of r.problems) o.push(c.red(`problem: ${p}`));
  return o.join("\n") + "\n";
}

function viaShieldTarget(url: string | undefined): HostPort {
  if (!url) return { host: "example.com", port: 443 };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LockdownInputError(`--probe-via-shield: "${url}" is not a URL (e.g. https://example.com/)`);
  }
  const port = u.port ? Number(u.port) : u.protocol === "http:" ? 80 : 443;
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port };
}

/**
 * Whether rules are loaded and units driven on the machine clawguard runs on. `--root` names
 * another system, as for every command: its files are written and this kernel is left alone,
 * unless `--load` asks for it (a network namespace standing in for that system).
 */
function runsHere(root: string, flags: LockdownFlags): boolean {
  return !flags.filesOnly && (root === "/" || flags.load === true);
}

export function registerLockdown(program: Command, setCode: (c: number) => void): void {
  const lockdown = program
    .command("lockdown")
    .description("drop every outbound packet of this server except those to the shield (plan by default)")
    .option("--shield <host:port>", "the egress shield (a name is resolved now and its addresses pinned)")
    .option(
      "--join <code>",
      "join the shield over WireGuard with the code `shield enroll` printed: the tunnel, then nothing but the tunnel",
    )
    .option("--interface <name>", "with --join: the tunnel's interface", DEFAULT_INTERFACE)
    .option(
      "--key-file <file>",
      "with --join: the key `lockdown keygen` made, for a code without one",
      AGENT_KEY_FILE,
    )
    .option(
      "--handshake-timeout <ms>",
      "with --join --apply: how long to wait for the shield's handshake before undoing the join",
      (v) => parsePort(v, "--handshake-timeout"),
      15000,
    )
    .option("--apply", "write the rules and units and load the rules")
    .option("--verify", "probe from this side: direct TCP and DNS must fail, the shield must answer")
    .option("--root <dir>", "the system mounted at DIR: files only, nothing is loaded into this machine", "/")
    .option(
      "--load",
      "with --root: load the rules into this network namespace all the same (a lab of namespaces)",
    )
    .option(
      "--ssh-port <n>",
      "SSH port whose replies pass (repeatable; default: sshd's real ports)",
      collect((v) => parsePort(v, "--ssh-port")),
    )
    .option(
      "--allow-out <cidr:port>",
      "also allow this destination, CIDR:PORT[/udp] (repeatable)",
      collect(parseAllowOut),
    )
    .option(
      "--allow-dns <ip>",
      "let DNS to this resolver through (repeatable)",
      collect((v) => parseIp(v, "--allow-dns")),
    )
    .option("--allow-dhcp", "let DHCP and DHCPv6 lease renewals through")
    .addOption(
      new Option("--backend <name>", "nft, or iptables/ip6tables (default: nft where installed)").choices([
        "nft",
        "iptables",
      ]),
    )
    .option(
      "--no-forward",
      "leave routed traffic alone (this server routes for others); containers then bypass",
    )
    .option("--no-log", "do not log dropped packets (they are still counted)")
    .option("--files-only", "with --apply: write files only, leave the running rules and systemd alone")
    .option(
      "--probe <host:port>",
      "with --verify: a direct destination that must be unreachable (repeatable)",
      collect((v) => parseHostPort(v, "--probe")),
    )
    .option(
      "--probe-via-shield <url>",
      "with --verify: CONNECT to this URL's host through the shield",
      undefined,
    )
    .option(
      "--dns <ip>",
      "with --verify: resolver to probe (default: resolv.conf's)",
      collect((v) => parseIp(v, "--dns")),
    )
    .option("--proxy-user <user:token>", "with --verify: credentials the shield asks for")
    .option("--timeout <ms>", "with --verify: how long a probe waits", (v) => parsePort(v, "--timeout"), 3000)
    .option("--json", "print as JSON (schemas clawguard.lockdown-{plan,apply,verify,rollback}/v1)")
    .action(async (flags: LockdownFlags) => {
      if (flags.apply && flags.verify)
        throw new LockdownInputError("--apply and --verify are separate steps: run one, then the other");
      const host = await hostAt(flags.root);
      if (flags.verify) {
        const st = await recordedShield(host);
        const given = flags.shield ? parseHostPort(flags.shield, "--shield") : undefined;
        if (!given && !st)
          throw new LockdownInputError("--verify needs --shield HOST:PORT (no lockdown state recorded here)");
        const tunnel = st?.tunnel;
        // A locked-down agent cannot resolve names: a shield given by name is the one lockdown
        // pinned, or it is resolved now (which fails when DNS is blocked, as it should be).
        let shield: HostPort;
        if (!given) shield = { host: st!.addresses[0]!, port: st!.port };
        else if (st && given.host === st.host && given.port === st.port)
          shield = { host: st.addresses[0]!, port: given.port };
        else shield = { host: (await pinShield(given)).addresses[0]!, port: given.port };
        const resolvers = flags.dns ?? resolversOf(await host.readFile("/etc/resolv.conf").catch(() => ""));
        const report = await verifyLockdown({
          shield,
          direct: flags.probe ?? DEFAULT_DIRECT_PROBES,
          resolvers,
          viaShield: viaShieldTarget(flags.probeViaShield),
          proxyUser: flags.proxyUser,
          timeoutMs: flags.timeout,
          ...(tunnel
            ? {
                tunnel: {
                  iface: tunnel.interface,
                  peer: tunnel.shieldPublicKey,
                  direct: tunnel.endpoint.addresses.map((a) => ({ host: a, port: st!.port })),
                },
              }
            : {}),
        });
        out(flags.json, report, () => renderVerifyText(report));
        setCode(report.ok ? 0 : 1);
        return;
      }
      if (flags.join !== undefined && flags.shield !== undefined)
        throw new LockdownInputError("--join names the shield: leave --shield out");
      if (flags.join === undefined && !flags.shield)
        throw new LockdownInputError(
          "--shield HOST:PORT is required (the egress shield's address), or --join CODE (from clawguard shield enroll)",
        );
      // A join code is checked, and its key found, before anything is planned or written.
      const joined =
        flags.join !== undefined
          ? await prepareJoin(host, {
              code: flags.join,
              nowSeconds: Math.floor(Date.now() / 1000),
              iface: flags.interface,
              keyFile: flags.keyFile,
            })
          : undefined;
      const shield = joined?.shield ?? (await pinShield(parseHostPort(flags.shield!, "--shield")));
      const plan = await planLockdown(host, {
        ...(joined ? { tunnel: joined.tunnel } : {}),
        // The CA the code carries, fetched and trusted by this very clawguard.
        ...(joined?.sshCa
          ? {
              sshCa: {
                ...joined.sshCa,
                ...(joined.sshCa.krlUrl !== undefined ? { launcher: await thisClawguard() } : {}),
              },
            }
          : {}),
        shield,
        sshPorts: flags.sshPort,
        allowOut: flags.allowOut ?? [],
        dns: flags.allowDns ?? [],
        dhcp: flags.allowDhcp ?? false,
        log: flags.log,
        forward: flags.forward,
        backend: flags.backend ?? (await detectBackend()),
      });
      if (!flags.apply) {
        const shown = shownPlan(plan);
        out(flags.json, shown, () => renderPlanText(shown));
        setCode(0);
        return;
      }
      const live = runsHere(host.root, flags);
      const writer = new LocalWriter(host);
      const liveOpts = { live, systemd: live ? undefined : false };
      const joinedRun = joined
        ? await applyJoin(host, writer, plan, { ...liveOpts, handshakeTimeoutMs: flags.handshakeTimeout })
        : null;
      const report = joinedRun?.apply ?? (await applyLockdown(host, writer, plan, liveOpts));
      const shown = shownPlan(plan);
      const handshake = joinedRun?.handshake ?? null;
      out(
        flags.json,
        { ...report, plan: shown, ...(joined ? { handshake } : {}) },
        () =>
          renderApplyText(shown, report) +
          (joined && handshake !== null
            ? `handshake with the shield ${joined.tunnel.shieldPublicKey} at ${new Date(handshake * 1000).toISOString()}: joined as ${joined.code.agent}\n`
            : ""),
      );
      setCode(0);
    });

  lockdown
    .command("keygen")
    .description(
      "make this agent's WireGuard key (0600, never overwritten) and print its public half for shield enroll --public-key",
    )
    .option("--force", "replace a key that is there (the shield must be given the new public key)")
    .action(async (_flags: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<LockdownFlags & { force?: boolean }>();
      const host = await hostAt(flags.root);
      const r = await keygen(host, new LocalWriter(host), flags.keyFile, flags.force === true);
      out(flags.json, { schema: "clawguard.lockdown-keygen/v1", ...r }, () =>
        [
          r.created ? `wrote ${r.file} (0600)` : `${r.file} holds a key already (--force replaces it)`,
          `public key: ${r.publicKey}`,
          `on the shield: clawguard shield enroll ID --public-key ${r.publicKey}`,
          "",
        ].join("\n"),
      );
      setCode(0);
    });

  // Commander gives options after a subcommand's name to the parent when they share it, so
  // rollback reads the parent's --root, --load, --files-only and --json.
  lockdown
    .command("rollback")
    .description(
      "remove the live rules, the files and the drop-in lockdown wrote; restore what they replaced " +
        "(takes lockdown's --root, --load, --files-only and --json)",
    )
    .action(async (_flags: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<LockdownFlags>();
      const host = await hostAt(flags.root);
      const live = runsHere(host.root, flags);
      const report = await rollbackLockdown(host, new LocalWriter(host), {
        live,
        systemd: live ? undefined : false,
      });
      out(flags.json, report, () => renderRollbackText(report));
      setCode(report.problems.length === 0 ? 0 : 2);
    });
}
