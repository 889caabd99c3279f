import {
  COREDUMP_CONF,
  COREDUMP_DROPIN_DIRS,
  LIMITS_CONF,
  LIMITS_D,
  parseCoreLimits,
  type CoreLimit,
  type CoredumpFact,
} from "../../facts/coredump.js";
import { dropInOrder } from "../../facts/dropins.js";
import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { parseMountTable } from "../../facts/mounts.js";
import { table } from "../../facts/record.js";
import {
  HARDENED_KEYS,
  liveTable,
  parseSysctlConf,
  procPath,
  readOnlyKeys,
  SYSCTL_CONF,
  SYSCTL_DIRS,
  type SysctlAssignment,
  type SysctlFact,
} from "../../facts/sysctl.js";
import { parseLocatedUnit, type LocatedUnit } from "../../facts/units.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { listDropInDirs } from "./dropins.js";
import { gather } from "./guard.js";

const MOUNTS = "/proc/self/mounts";

/**
 * What the sysctl drop-ins set for boot and, on the running system, what the kernel holds now
 * for the keys the kernel layer judges: a drop-in nobody applied protects nothing until reboot.
 */
export function gatherSysctl(ctx: FactContext): Promise<Fact<SysctlFact>> {
  return gather("/etc/sysctl.d", async () => {
    const problems: Problem[] = [];
    const files: string[] = [];
    const assignments: SysctlAssignment[] = [];
    const listing = await listDropInDirs(ctx, SYSCTL_DIRS, problems);
    // `sysctl --system` reads /etc/sysctl.conf after the drop-ins (Debian links it as 99-sysctl.conf too).
    const order = dropInOrder(SYSCTL_DIRS, listing);
    for (const p of [...order, SYSCTL_CONF]) {
      try {
        assignments.push(...parseSysctlConf(await ctx.host.readFile(p), p));
        files.push(p);
      } catch (err) {
        if (!isMissing(err)) problems.push(toProblem(p, err));
      }
    }
    let live: Record<string, string> | undefined;
    let readOnly: string[] = [];
    if (ctx.host.root === "/") {
      live = liveTable();
      for (const key of HARDENED_KEYS) {
        try {
          live[key] = (await ctx.host.readFile(procPath(key))).trim();
        } catch (err) {
          // A key this kernel lacks (IPv6 disabled) has no live value to judge.
          if (!isMissing(err)) problems.push(toProblem(procPath(key), err));
        }
      }
      try {
        readOnly = readOnlyKeys(parseMountTable(await ctx.host.readFile(MOUNTS), MOUNTS), HARDENED_KEYS);
      } catch (err) {
        problems.push(toProblem(MOUNTS, err));
      }
    }
    return ok({ assignments, files, live, readOnly }, files, problems);
  });
}

export function gatherCoredump(ctx: FactContext): Promise<Fact<CoredumpFact>> {
  return gather(COREDUMP_CONF, async () => {
    const problems: Problem[] = [];
    const files: string[] = [];
    const config: LocatedUnit = table();
    const listing = await listDropInDirs(ctx, COREDUMP_DROPIN_DIRS, problems);
    for (const p of [COREDUMP_CONF, ...dropInOrder(COREDUMP_DROPIN_DIRS, listing)]) {
      try {
        parseLocatedUnit(await ctx.host.readFile(p), p, config);
        files.push(p);
      } catch (err) {
        if (!isMissing(err)) problems.push(toProblem(p, err));
      }
    }
    const limits: CoreLimit[] = [];
    const limitsD = await listDropInDirs(ctx, [LIMITS_D], problems);
    for (const p of [LIMITS_CONF, ...dropInOrder([LIMITS_D], limitsD)]) {
      try {
        limits.push(...parseCoreLimits(await ctx.host.readFile(p), p));
        files.push(p);
      } catch (err) {
        if (!isMissing(err)) problems.push(toProblem(p, err));
      }
    }
    return ok({ config, files, limits }, files, problems);
  });
}
