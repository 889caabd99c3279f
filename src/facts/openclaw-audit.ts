import { z } from "zod";

/** `openclaw security audit --json`, as documented: extra fields are ignored. */
export const OpenClawAuditSchema = z.object({
  ts: z.union([z.string(), z.number()]).optional(),
  summary: z.object({ critical: z.number(), warn: z.number(), info: z.number() }).partial().optional(),
  findings: z.array(
    z.object({
      checkId: z.string(),
      severity: z.string(),
      title: z.string(),
      detail: z.string().optional(),
      remediation: z.string().optional(),
    }),
  ),
});
export type OpenClawAuditReport = z.infer<typeof OpenClawAuditSchema>;

export interface OpenClawAuditRun {
  /** The command as a person would type it (without the privilege drop). */
  command: string;
  /** Who it ran as. */
  ranAs: string;
  stateDir?: string;
  report: OpenClawAuditReport;
}

/** Parse the command's stdout: the JSON document, even when log lines come before it. */
export function parseAuditOutput(stdout: string): OpenClawAuditReport {
  const text = stdout.trim();
  const start = text.startsWith("{") ? 0 : text.search(/^\{/m);
  if (start < 0) throw new Error("no JSON object in its output");
  return OpenClawAuditSchema.parse(JSON.parse(text.slice(start)));
}
