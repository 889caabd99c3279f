import { InvalidArgumentError, Option, type Command } from "commander";
import pc from "picocolors";
import { loadShieldConfig, type ShieldConfig } from "../shield/config.js";
import {
  DECISIONS,
  openLogReader,
  parseAnchor,
  type Anchor,
  type LogDecision,
  type LogFilter,
  type StoredRecord,
  changeOperator,
} from "../shield/log/index.js";
import { UsageError } from "../errors.js";
import { parseDuration } from "../shield/units.js";
import { formatHostPort } from "../net/hostport.js";
import { causeOf, reasonShown } from "../shield/policy/outcome.js";
import { wantColor } from "./report.js";
import { sharedLog, sharedVerify } from "./shield-store.js";

interface SourceFlags {
  db?: string;
  config?: string;
  json?: boolean;
}

interface LogFlags extends SourceFlags {
  agent?: string;
  decision?: LogDecision;
  host?: string;
  operator?: string;
  since?: number;
  until?: number;
  limit: number;
  follow?: boolean;
}

/** "1h" (that long ago) or an ISO time, as ms since the epoch. */
export function parseTime(flag: string, now: () => number = Date.now) {
  return (v: string): number => {
    const ago = parseDuration(v);
    if (ago !== null) return now() - ago;
    const t = Date.parse(v);
    if (/^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(t)) return t;
    throw new InvalidArgumentError(
      `${flag} takes an ISO time (2025-01-31T12:00:00Z) or a duration ago (90s, 15m, 1h, 7d), not "${v}"`,
    );
  };
}

function parseLimit(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    throw new InvalidArgumentError(`--limit takes a whole number from 1 to 100000, not "${v}"`);
  }
  return n;
}

async function dbPath(flags: SourceFlags): Promise<string> {
  if (flags.db && flags.config) throw new UsageError("pass either --db or --config, not both");
  if (flags.db) return flags.db;
  if (flags.config) return (await loadShieldConfig(flags.config)).log.path;
  throw new UsageError("which log? pass --db PATH, or --config shield.yaml to use its log.path");
}

/** The config of `--config` when its shield shares a store: the log to read is then the store's. */
async function sharedStore(flags: SourceFlags): Promise<ShieldConfig | null> {
  if (flags.db || !flags.config) return null;
  const cfg = await loadShieldConfig(flags.config);
  return cfg.store ? cfg : null;
}

async function sharedLogAction(
  cfg: ShieldConfig,
  flags: LogFlags,
  setCode: (c: number) => void,
): Promise<void> {
  const color = !flags.json && wantColor(process.stdout);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (flags.follow) {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }
  const all: StoredRecord[] = [];
  try {
    await sharedLog(
      cfg,
      {
        agent: flags.agent,
        decision: flags.decision,
        host: flags.host,
        since: flags.since,
        until: flags.until,
      },
      flags.limit,
      (rs) => {
        if (flags.json && !flags.follow) all.push(...rs);
        else
          for (const r of rs)
            process.stdout.write(
              (flags.json
                ? JSON.stringify({ schema: "clawguard.shield-log-record/v1", ...r })
                : formatRecord(r, color)) + "\n",
            );
      },
      flags.follow ? stop.signal : null,
    );
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (flags.json && !flags.follow)
    process.stdout.write(JSON.stringify({ schema: "clawguard.shield-log/v1", records: all }, null, 2) + "\n");
  setCode(0);
}

/**
 * One line per record: time, agent, decision, method, host:port and path, what decided it (the
 * rule, default, lockdown or unknown agent), bytes up/down, then why, for every refusal and
 * for an allowed request that failed on its way (DNS, connect).
 */
export function formatRecord(r: StoredRecord, color = false): string {
  const c = pc.createColors(color);
  const by = changeOperator(r);
  // A change an operator made: who, what kind, what it touched, and what it did.
  if (by !== null)
    return [
      c.dim(new Date(r.ts).toISOString()),
      `operator ${by}`,
      c.cyan(r.method),
      r.agent ?? r.fleet ?? r.tier ?? "-",
      r.reason,
    ].join("  ");
  const paint = r.decision === "allowed" ? c.green : r.decision === "denied" ? c.red : c.yellow;
  const why = reasonShown(r);
  return [
    c.dim(new Date(r.ts).toISOString()),
    ...("node" in r ? [c.dim(String(r.node))] : []),
    r.agent ?? "(unknown)",
    paint(r.decision.padEnd(7)),
    r.method,
    r.host === "" ? "(no target)" : formatHostPort(r.host, r.port) + (r.path ?? ""),
    c.dim(causeOf(r)),
    `${r.bytesUp}↑ ${r.bytesDown}↓`,
    ...(why !== null ? [r.decision === "allowed" ? c.red(why) : why] : []),
  ].join("  ");
}

function sourceOptions(cmd: Command): Command {
  return cmd
    .option("--db <path>", "the shield's log database")
    .option("--config <file>", "shield.yaml: use its log.path")
    .option("--json", "print JSON");
}

/**
 * `shield log` and `shield verify-log`. `setCode` receives 1 when verify-log finds the chain
 * broken; without it, the process exit code is set directly.
 */
export function registerShieldLogCommands(
  shield: Command,
  setCode: (c: number) => void = (c) => {
    process.exitCode = c;
  },
): void {
  sourceOptions(
    shield
      .command("log")
      .description("show the shield's decisions, newest last; --follow keeps printing new ones")
      .option("--agent <id>", "only this agent")
      .addOption(new Option("--decision <decision>", "only this decision").choices(DECISIONS))
      .option("--host <host>", "only this host, or *.example.com for every name under it")
      .option("--operator <name>", "only the changes this operator made (modes, rules, operators, grants)")
      .option("--since <time>", "from this time: ISO, or a duration ago (1h, 7d)", parseTime("--since"))
      .option("--until <time>", "up to this time: ISO, or a duration ago", parseTime("--until"))
      .option("--limit <n>", "at most this many records (the newest)", parseLimit, 100)
      .option("--follow", "keep printing records as the shield writes them, until interrupted"),
  ).action(async (flags: LogFlags) => {
    const shared = await sharedStore(flags);
    if (shared) return sharedLogAction(shared, flags, setCode);
    const reader = openLogReader(await dbPath(flags));
    try {
      const filter: LogFilter = {
        agent: flags.agent,
        decision: flags.decision,
        host: flags.host,
        operator: flags.operator,
        since: flags.since,
        until: flags.until,
      };
      const color = !flags.json && wantColor(process.stdout);
      const head = reader.query({ order: "desc", limit: 1 })[0]?.id ?? 0;
      const last = reader
        .query({ ...filter, order: "desc", limit: flags.limit })
        .filter((r) => r.id <= head)
        .reverse();
      const line = (r: StoredRecord) =>
        process.stdout.write(
          (flags.json
            ? JSON.stringify({ schema: "clawguard.shield-log-record/v1", ...r })
            : formatRecord(r, color)) + "\n",
        );
      if (!flags.follow) {
        if (flags.json) {
          process.stdout.write(
            JSON.stringify({ schema: "clawguard.shield-log/v1", records: last }, null, 2) + "\n",
          );
        } else {
          last.forEach(line);
        }
        setCode(0);
        return;
      }
      last.forEach(line);
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        await reader.follow({ ...filter, afterId: head }, (rs) => rs.forEach(line), { signal: stop.signal });
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      setCode(0);
    } finally {
      await reader.close();
    }
  });

  sourceOptions(
    shield
      .command("verify-log")
      .description("check the log's hash chain; exit 1 naming the first record that was changed or removed")
      .option(
        "--anchor <id:hash...>",
        "a head printed by an earlier verify-log and kept elsewhere: that record must still have that hash",
        (v: string, prev: Anchor[] | undefined) => {
          try {
            return [...(prev ?? []), parseAnchor(v)];
          } catch (e) {
            throw new InvalidArgumentError((e as Error).message);
          }
        },
      ),
  ).action(async (flags: SourceFlags & { anchor?: Anchor[] }) => {
    const shared = await sharedStore(flags);
    if (shared) return sharedVerify(shared, flags.json === true, setCode);
    const db = await dbPath(flags);
    const reader = openLogReader(db);
    try {
      const v = reader.verify(flags.anchor ?? []);
      if (flags.json) {
        process.stdout.write(
          JSON.stringify({ schema: "clawguard.shield-verify-log/v1", db, ...v }, null, 2) + "\n",
        );
      } else if (v.ok) {
        const span = v.count > 0 ? `, ids ${v.fromId + 1}..${v.headId}` : "";
        const from = v.fromId > 0 ? ` (older records pruned up to id ${v.fromId})` : "";
        const anchors = flags.anchor?.length
          ? `; ${flags.anchor.length - v.anchorsPruned.length} anchor(s) match` +
            (v.anchorsPruned.length ? `, ${v.anchorsPruned.length} name pruned records` : "")
          : "";
        process.stdout.write(
          `${db}: intact, ${v.count} record(s)${span}${from}${anchors}\n` +
            `head ${v.headId}:${v.headHash}\n` +
            `  keep this line off the shield host; verify-log --anchor ${v.headId}:${v.headHash} later proves the log was not rewritten up to it\n`,
        );
      } else {
        process.stdout.write(
          `${db}: BROKEN at record ${v.firstBadId}: ${v.reason}\n` +
            `  ${v.count} record(s) before it verified; the log was changed outside the shield, or the disk is damaged.\n`,
        );
      }
      setCode(v.ok ? 0 : 1);
    } finally {
      await reader.close();
    }
  });
}
