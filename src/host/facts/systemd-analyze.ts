import type { FactContext } from "../context.js";
import { HostError, type Problem } from "../errors.js";
import { gather, ok, skipped, toProblem, type Fact } from "../fact.js";
import { gatherOpenClaw } from "./openclaw.js";

export interface ExposureScore {
  score: number;
  /** systemd's word for it: OK, MEDIUM, EXPOSED, UNSAFE... */
  rating: string;
  /** The line it printed, without the arrow and emoji. */
  line: string;
  command: string;
}

export type ExposureResult = { ok: ExposureScore } | { problem: Problem } | { skip: string };

/** The overall line of `systemd-analyze security`: "→ Overall exposure level for x.service: 9.6 UNSAFE 😨". */
export function parseExposure(stdout: string): { score: number; rating: string; line: string } | undefined {
  const m = /Overall exposure level for (\S+): (\d+(?:\.\d+)?) ([A-Z]+)/.exec(stdout);
  if (!m) return undefined;
  return { score: Number(m[2]), rating: m[3]!, line: `Overall exposure level for ${m[1]}: ${m[2]} ${m[3]}` };
}

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
    const oc = await ctx.get(gatherOpenClaw);
    if (oc.status !== "ok") return skipped("OpenClaw discovery failed");
    const out: Record<string, ExposureResult> = {};
    // One at a time: each run loads every unit it references and takes a core for a moment.
    for (const i of oc.value.installs)
      if (i.unit && !(i.unit.path in out)) out[i.unit.path] = await scoreUnit(ctx, i.unit.path);
    return ok(out, ["systemd-analyze security --offline=yes"]);
  });
}
