/**
 * The JSON a host's clawguard sends back, checked before fleet believes any of it: a host may be
 * compromised, or run something else that calls itself clawguard. Only the fields fleet reads
 * are checked; the rest is kept as sent.
 */
import { z } from "zod";
import { ClawguardError } from "../errors.js";
import { LAYERS, SEVERITIES, STATUSES } from "../checks/finding.js";
import type { RunResult } from "./ssh/session.js";

const text = z.string().max(100_000);

export const findingSchema = z.looseObject({
  id: z.string().max(200),
  layer: z.enum(LAYERS),
  severity: z.enum(SEVERITIES),
  status: z.enum(STATUSES),
  title: text,
  detail: text.optional(),
  evidence: z.looseObject({ source: text, excerpt: text }),
  remediation: text,
  fixable: z.boolean(),
});

const summarySchema = z.looseObject({
  pass: z.number(),
  fail: z.number(),
  warn: z.number(),
  skip: z.number(),
  error: z.number(),
});

export const auditReportSchema = z.looseObject({
  schema: z.literal("clawguard.audit/v1"),
  root: z.string(),
  asRoot: z.boolean(),
  startedAt: z.string(),
  durationMs: z.number(),
  layers: z.array(z.enum(LAYERS)),
  findings: z.array(findingSchema).max(10_000),
  summary: summarySchema,
});
export type AuditReport = z.infer<typeof auditReportSchema>;
export type Finding = z.infer<typeof findingSchema>;

export const hardenReportSchema = z.looseObject({
  schema: z.literal("clawguard.harden/v1"),
  applied: z.boolean(),
  runId: z.string().optional(),
  changes: z.array(z.looseObject({ kind: z.string(), action: text, fixes: z.array(z.string()) })),
  blocked: z.array(z.looseObject({ layer: z.string(), reason: text })),
  before: summarySchema,
  after: summarySchema.optional(),
  fixed: z.array(z.string()).optional(),
  health: z.looseObject({ ok: z.boolean(), detail: text }).optional(),
  egress: z.looseObject({ error: text.optional() }).optional(),
  error: text.optional(),
  rollbackProblems: z.array(text).optional(),
});
export type HardenReport = z.infer<typeof hardenReportSchema>;

export const rollbackReportSchema = z.looseObject({
  schema: z.literal("clawguard.rollback/v1"),
  runId: z.string(),
  problems: z.array(text),
});

export const lockdownPlanSchema = z.looseObject({
  schema: z.literal("clawguard.lockdown-plan/v1"),
  files: z.array(z.looseObject({ path: text, diff: text })),
  links: z.array(z.looseObject({ path: text, target: text, before: text.nullable() })),
  warnings: z.array(text),
});
export type LockdownPlan = z.infer<typeof lockdownPlanSchema>;

export const lockdownStepsSchema = z.looseObject({
  runId: z.string().optional(),
  steps: z.array(z.looseObject({ ok: z.boolean(), command: text })).optional(),
  problems: z.array(text).optional(),
});

export const lockdownVerifySchema = z.looseObject({
  ok: z.boolean(),
  probes: z.array(z.looseObject({ held: z.boolean(), id: text, target: text, outcome: text })),
});

/** clawguard on a host failed; `remoteCode` is the code its own error gave, when it gave one. */
export class RemoteCommandError extends ClawguardError {
  constructor(
    host: string,
    command: string,
    why: string,
    readonly remoteCode?: string,
  ) {
    super("CG_REMOTE_FAILED", `clawguard ${command}: ${why}`, {
      where: host,
      hint: `run clawguard ${command} on the host to see more`,
    });
  }
}

const errorSchema = z.looseObject({
  schema: z.literal("clawguard.error/v1"),
  code: z.string(),
  message: text,
});

/**
 * The report in `r`'s output, when clawguard exited with one of `codes`. Otherwise its own error
 * (clawguard.error/v1 on stderr), or what it printed, as CG_REMOTE_FAILED naming the command.
 */
export function parseReport<T>(
  host: string,
  command: string,
  r: RunResult,
  schema: z.ZodType<T>,
  codes: readonly number[],
): T {
  const fail = (why: string, remoteCode?: string) => new RemoteCommandError(host, command, why, remoteCode);
  if (!codes.includes(r.code)) {
    const last = r.stderr.trim().split("\n").pop() ?? "";
    let own: z.infer<typeof errorSchema> | undefined;
    try {
      own = errorSchema.parse(JSON.parse(last));
    } catch {
      own = undefined;
    }
    if (own) throw fail(`${own.message} (${own.code})`, own.code);
    throw fail(`exited ${r.code}${last ? `: ${last.slice(0, 500)}` : ""}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(r.stdout.toString("utf8"));
  } catch {
    throw fail("printed no JSON");
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw fail(`answered with something else than its report (${i?.path.join(".") || "top"}: ${i?.message})`);
  }
  return parsed.data;
}
