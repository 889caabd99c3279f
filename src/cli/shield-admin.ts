import type { Command } from "commander";
import type { AgentTunnel } from "../shield/wireguard/status.js";
import type { BudgetUse } from "../shield/admission/budget.js";
import { call, DEFAULT_CONFIG, type ApiFlags } from "../shield/admin/client.js";
import { UsageError } from "../errors.js";
import { installShield } from "../shield/install.js";
import { addAgent } from "../shield/admin/agents-file.js";

const MODES = ["enforce", "audit", "lockdown", "inherit"] as const;

export function apiOptions(cmd: Command): Command {
  return cmd
    .option("--admin <url>", "admin API address, e.g. http://127.0.0.1:9090 (env CLAWGUARD_ADMIN_URL)")
    .option(
      "--token-file <file>",
      "file holding your operator token (else env CLAWGUARD_SHIELD_TOKEN, or ~/.config/clawguard/shield-token)",
    )
    .option(
      "--config <file>",
      `shield.yaml to take admin.listen and admin.token_file from (default ${DEFAULT_CONFIG})`,
    )
    .option("--json", "print the API's JSON answer");
}

const out = (s: string): void => {
  process.stdout.write(s.endsWith("\n") ? s : s + "\n");
};

function ago(ms: unknown): string {
  if (typeof ms !== "number") return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** The budget nearest to running out: "upload 84% tier:crew", "requests spent agent:scout", or "-". */
export function budgetCell(u: BudgetUse | null): string {
  if (u === null) return "-";
  return `${u.kind} ${u.fraction >= 1 ? "spent" : `${Math.floor(u.fraction * 100)}%`} ${u.scope}`;
}

/**
 * Rows in aligned columns (the first row is the header). `paint` colours a body cell after it
 * is padded, so escape codes never count towards a width.
 */
export function table(
  rows: string[][],
  paint: (padded: string, cell: string, column: number) => string = (padded) => padded,
): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r, n) =>
      r
        .map((c, i) => (n === 0 ? c.padEnd(widths[i]!) : paint(c.padEnd(widths[i]!), c, i)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

interface ModeFlags extends ApiFlags {
  global?: boolean;
  fleet?: string;
  agent?: string;
}

interface RuleFlags extends ModeFlags {
  tier?: string;
}

function ruleTarget(flags: RuleFlags): { level: string; name?: string } {
  const given = [flags.global ? "global" : null, flags.tier, flags.fleet, flags.agent].filter(
    (x) => x != null,
  );
  if (given.length > 1) throw new UsageError("give one of --global, --tier, --fleet, --agent");
  if (flags.tier !== undefined) return { level: "tier", name: flags.tier };
  if (flags.fleet !== undefined) return { level: "fleet", name: flags.fleet };
  if (flags.agent !== undefined) return { level: "agent", name: flags.agent };
  return { level: "global" };
}

/** An agent's tunnel in `shield agents`: handshake, endpoint, bytes received and sent by the shield. */
function tunnelCells(t: AgentTunnel | null): string[] {
  if (!t) return ["-", "-", "-"];
  if (!t.onInterface) return ["not on the interface", "-", "-"];
  return [
    t.latestHandshake === null ? "never" : ago(t.latestHandshake),
    t.endpoint ?? "-",
    `${t.rxBytes}/${t.txBytes}`,
  ];
}

interface InstallFlags {
  root: string;
  configDir: string;
  user: string;
  wireguard?: boolean;
  endpoint?: string;
  interface: string;
  address: string;
  json?: boolean;
}

/** `status`, `reload`, `agents`, `mode`, `rules` (talk to the admin API) and `install`. */
export function registerShieldAdminCommands(shield: Command, setCode: (c: number) => void): void {
  apiOptions(
    shield
      .command("status")
      .description("the running shield: uptime, decisions, tunnels, modes, last reload"),
  ).action(async (flags: ApiFlags) => {
    const s = await call(flags, "GET", "/api/status");
    if (flags.json) return out(JSON.stringify(s, null, 2));
    const d = s.decisions as Record<string, number>;
    const modes = s.modes as {
      global: string;
      fleets: Record<string, string | null>;
      agents: Record<string, string>;
    };
    const r = s.lastReload as { ok: boolean; trigger: string; error: string | null; at: number } | null;
    out(
      [
        `shield ${String(s.version)}, up ${String(s.uptimeSeconds)}s, config ${String(s.config)}`,
        `decisions: ${d.allowed} allowed, ${d.denied} denied, ${d.audited} audited; ${String(s.openTunnels)} open tunnel(s)`,
        `mode: global ${modes.global}` +
          Object.entries(modes.fleets)
            .map(([f, m]) => `, fleet ${f} ${m ?? "inherits"}`)
            .join(""),
        r
          ? `last reload (${r.trigger}, ${ago(r.at)}): ${r.ok ? "applied" : `FAILED, running policy kept:\n  ${r.error}`}`
          : "no reload since start",
      ].join("\n"),
    );
    setCode(0);
  });

  apiOptions(
    shield
      .command("reload")
      .description(
        "ask the running shield to read shield.yaml again (as SIGHUP does); a file with errors is not applied",
      ),
  ).action(async (flags: ApiFlags) => {
    const r = await call(flags, "POST", "/api/reload");
    if (flags.json) return out(JSON.stringify(r, null, 2));
    const restart = r.restartNeeded as string[];
    out(
      `reloaded: the running shield applies the file now; ${String(r.tunnelsClosed)} open tunnel(s) closed` +
        (restart.length ? `\nchanges to ${restart.join(", ")} apply after a restart` : ""),
    );
    setCode(0);
  });

  const agentsCmd = shield
    .command("agents")
    .description("list the running shield's agents, or add one to shield.yaml with a new token");
  agentsCmd
    .command("add")
    .description(
      "add an agent to shield.yaml with a new token: the token is printed once, the file keeps its sha256",
    )
    .argument("<id>", "the agent's id, e.g. scout")
    .option("--fleet <fleet>", "the fleet it belongs to (defined under fleets)")
    .option("--tier <tier>", "its tier (defined under tiers)")
    .option("--config <file>", `the shield.yaml to add it to (default ${DEFAULT_CONFIG})`)
    .option("--json", "print the agent and its token as JSON (schema clawguard.shield-agent-add/v1)")
    .action(async (id: string, flags: { fleet?: string; tier?: string; config?: string; json?: boolean }) => {
      const file = flags.config ?? DEFAULT_CONFIG;
      const a = await addAgent(file, {
        id,
        ...(flags.fleet !== undefined ? { fleet: flags.fleet } : {}),
        ...(flags.tier !== undefined ? { tier: flags.tier } : {}),
      });
      if (flags.json) {
        out(JSON.stringify({ schema: "clawguard.shield-agent-add/v1", config: file, ...a }, null, 2));
      } else {
        const where = [a.fleet && `fleet ${a.fleet}`, a.tier && `tier ${a.tier}`].filter(Boolean).join(", ");
        out(
          [
            `added agent ${a.id}${where ? ` (${where})` : ""} to ${file}`,
            `token: ${a.token}`,
            "  shown this once: the file keeps only its sha256. The agent sends it as its proxy password:",
            `  HTTPS_PROXY=http://${a.id}:${a.token}@SHIELD-HOST:PORT`,
            "a running shield picks the file up on its own (or: clawguard shield reload)",
          ].join("\n"),
        );
      }
      setCode(0);
    });
  apiOptions(
    agentsCmd
      .command("list", { isDefault: true })
      .description("agents with their mode, last request, traffic and open tunnels"),
  ).action(async (flags: ApiFlags) => {
    const s = await call(flags, "GET", "/api/agents");
    if (flags.json) return out(JSON.stringify(s, null, 2));
    const agents = s.agents as Array<
      Record<string, string | number | null> & { budgetUse: BudgetUse | null; wireguard: AgentTunnel | null }
    >;
    const wg = agents.some((a) => a.wireguard);
    out(
      table([
        [
          "AGENT",
          "FLEET",
          "TIER",
          "MODE",
          "LAST SEEN",
          "REQUESTS",
          "DENIED",
          "UP",
          "DOWN",
          "TUNNELS",
          "BUDGET",
          ...(wg ? ["HANDSHAKE", "ENDPOINT", "WG RX/TX"] : []),
        ],
        ...agents.map((a) => [
          String(a.id),
          String(a.fleet ?? "-"),
          String(a.tier ?? "-"),
          String(a.mode) + (a.modeOverride ? "*" : ""),
          ago(a.lastSeen),
          String(a.requests),
          String(a.denied),
          String(a.bytesUp),
          String(a.bytesDown),
          String(a.openTunnels),
          budgetCell(a.budgetUse),
          ...(wg ? tunnelCells(a.wireguard) : []),
        ]),
      ]) + (agents.some((a) => a.modeOverride) ? "\n* mode set through the admin API" : ""),
    );
    setCode(0);
  });

  apiOptions(
    shield
      .command("mode")
      .description(
        "switch the mode of everything, a fleet or an agent (inherit drops the switch); open tunnels follow",
      )
      .argument("<mode>", MODES.join(" | "))
      .option("--global", "every agent (the default)")
      .option("--fleet <fleet>", "one fleet")
      .option("--agent <agent>", "one agent"),
  ).action(async (mode: string, flags: ModeFlags) => {
    if (!(MODES as readonly string[]).includes(mode)) {
      throw new UsageError(`mode must be one of ${MODES.join(", ")}, not "${mode}"`);
    }
    const t = ruleTarget(flags);
    const body = {
      scope: t.level,
      ...(t.name !== undefined ? { id: t.name } : {}),
      mode: mode === "inherit" ? null : mode,
    };
    const r = await call(flags, "PUT", "/api/mode", body);
    if (flags.json) return out(JSON.stringify(r, null, 2));
    out(`${t.level}${t.name ? ` ${t.name}` : ""}: ${mode}; ${String(r.tunnelsClosed)} open tunnel(s) closed`);
    setCode(0);
  });

  const rules = shield
    .command("rules")
    .description("list, add or remove allow and deny rules (saved to shield.yaml)");
  apiOptions(rules.command("list", { isDefault: true }).description("every rule, level by level")).action(
    async (flags: ApiFlags) => {
      const r = await call(flags, "GET", "/api/rules");
      if (flags.json) return out(JSON.stringify(r, null, 2));
      const levels = r.levels as Array<{
        level: string;
        name: string | null;
        allow: string[];
        deny: string[];
      }>;
      const lines: string[] = [];
      for (const l of levels) {
        if (l.allow.length + l.deny.length === 0) continue;
        lines.push(`${l.level}${l.name ? ` ${l.name}` : ""}:`);
        for (const x of l.deny) lines.push(`  deny  ${x}`);
        for (const x of l.allow) lines.push(`  allow ${x}`);
      }
      out(lines.length ? lines.join("\n") : "no rules: every destination is denied");
      setCode(0);
    },
  );
  for (const op of ["add", "remove"] as const) {
    apiOptions(
      rules
        .command(op)
        .description(`${op} a rule (global unless --tier, --fleet or --agent); applies at once`)
        .argument("<verdict>", "allow | deny")
        .argument("<rule>", "e.g. api.example.com:443, *.example.com, 203.0.113.0/24")
        .option("--global", "the global level (the default)")
        .option("--tier <tier>", "a tier's rules")
        .option("--fleet <fleet>", "a fleet's rules")
        .option("--agent <agent>", "an agent's own rules"),
    ).action(async (verdict: string, rule: string, flags: RuleFlags) => {
      if (verdict !== "allow" && verdict !== "deny") {
        throw new UsageError(`verdict must be allow or deny, not "${verdict}"`);
      }
      const t = ruleTarget(flags);
      const r = await call(flags, op === "add" ? "POST" : "DELETE", "/api/rules", { ...t, verdict, rule });
      if (flags.json) return out(JSON.stringify(r, null, 2));
      out(
        `${op === "add" ? "added" : "removed"} ${verdict} ${rule} at ${t.level}${t.name ? ` ${t.name}` : ""}; ${String(r.tunnelsClosed)} open tunnel(s) closed`,
      );
      setCode(0);
    });
  }

  shield
    .command("install")
    .description("write the shield's hardened systemd unit, a commented shield.yaml and an admin token")
    .option("--root <dir>", "install into this root tree instead of /", "/")
    .option("--config-dir <dir>", "where shield.yaml and the admin token go", "/etc/clawguard")
    .option("--user <name>", "the system user the shield runs as", "clawguard-shield")
    .option("--wireguard", "also the WireGuard interface agents reach the proxy through (needs --endpoint)")
    .option(
      "--endpoint <host:port>",
      "with --wireguard: this server's public address and UDP port for agents",
    )
    .option("--interface <name>", "with --wireguard: the interface", "cg0")
    .option(
      "--address <ranges>",
      "with --wireguard: the shield's address in each agent range, IPv4 first",
      "10.77.0.1/16,fd77:77::1/64",
    )
    .option("--json", "print what was written as JSON (schema clawguard.shield-install/v1)")
    .action(async (flags: InstallFlags) => {
      if (flags.wireguard && flags.endpoint === undefined)
        throw new UsageError(
          "--wireguard needs --endpoint HOST:PORT: this server's public address and the UDP port agents send to",
        );
      if (!flags.wireguard && flags.endpoint !== undefined)
        throw new UsageError("--endpoint goes with --wireguard");
      const r = await installShield({
        root: flags.root,
        configDir: flags.configDir,
        user: flags.user,
        ...(flags.wireguard
          ? {
              wireguard: {
                endpoint: flags.endpoint!,
                iface: flags.interface,
                addresses: flags.address
                  .split(",")
                  .map((a) => a.trim())
                  .filter(Boolean),
              },
            }
          : {}),
      });
      if (flags.json) {
        out(JSON.stringify({ schema: "clawguard.shield-install/v1", ...r }, null, 2));
      } else {
        for (const f of r.files) out(`${f.action.padEnd(9)} ${f.path}${f.note ? `  (${f.note})` : ""}`);
        for (const n of r.next) out(`next: ${n}`);
      }
      setCode(0);
    });
}
