import { ok, skipped, type Fact } from "../../facts/fact.js";
import { parseExposure, type ExposureResult } from "../../facts/systemd-analyze.js";
import type { FactContext } from "../context.js";
import { HostError, toProblem } from "../errors.js";
import { gather } from "./guard.js";

/** Score one unit file offline, inside the audited root. */
export async function scoreUnit(ctx: FactContext, unitPath: string): Promise<ExposureResult> {
  const args = ["security", "--offline=yes", "--no-pager", unitPath];
  const command = `systemd-analyze ${args.join(" ")}`;
  try {
    const r = await ctx.host.run("systemd-analyze", args, { timeoutMs: 30_000 });
    const parsed = parseExposure(r.stdout);
    if (!parsed)
      return {
        problem: {
          kind: "malformed",
          source: command,
          message: `exit ${r.code}, no "Overall exposure level" line: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" ").slice(0, 200)}`,
        },
      };
    return { ok: { ...parsed, command } };
  } catch (err) {
    if (err instanceof HostError && err.problem.kind === "unavailable") return { skip: err.problem.message };
    if (err instanceof HostError && err.problem.kind === "missing")
      return { skip: "systemd-analyze is not installed" };
    return { problem: toProblem(command, err) };
  }
}

/** Exposure scores of the units that run each install, by unit path. */
export function gatherExposure(ctx: FactContext): Promise<Fact<Record<string, ExposureResult>>> {
  return gather("systemd-analyze", async () => {
    const oc = await ctx.get("openclaw");
    if (oc.status !== "ok") return skipped("OpenClaw discovery failed");
    const out: Record<string, ExposureResult> = {};
    // One at a time: each run loads every unit it references and takes a core for a moment.
    for (const i of oc.value.installs)
      if (i.unit && !(i.unit.path in out)) out[i.unit.path] = await scoreUnit(ctx, i.unit.path);
    return ok(out, ["systemd-analyze security --offline=yes"]);
  });
}
