/**
 * Waivers: a known exception, written down with its reason and an end date, so it does not
 * drown the rest of the report. A waived finding keeps its status and evidence, leaves the exit
 * code alone and is listed apart; once its date has passed it counts again, as if unwaived.
 *
 *     waivers:
 *       - check: firewall.installed
 *         host: "web-*"
 *         reason: the provider's firewall does this job
 *         expires: 2027-03-31
 */
import { z } from "zod";
import type { Finding } from "../checks/finding.js";
import { parseYamlAs, readConfigText } from "../yaml/read.js";

const DATE = /^\d{4}-\d{2}-\d{2}$/;

const waiverSchema = z
  .object({
    check: z.string().regex(/^[a-z0-9_]+\.[A-Za-z0-9_.-]+$/, "a check id, as clawguard checks lists it"),
    host: z.string().min(1).default("*"),
    reason: z.string().trim().min(1, "say why this exception is accepted"),
    // YAML reads an unquoted 2027-03-31 as a date; both spellings mean the same day.
    expires: z.union([
      z.string().regex(DATE, "a date, YYYY-MM-DD"),
      z.date().transform((d) => d.toISOString().slice(0, 10)),
    ]),
  })
  .strict();

const fileSchema = z.object({ waivers: z.array(waiverSchema) }).strict();

export type Waiver = z.infer<typeof waiverSchema>;

export function parseWaivers(text: string, file: string): Waiver[] {
  return parseYamlAs(text, file, fileSchema, {
    list: false,
    reason: "expected a map with a waivers: list",
    empty: { waivers: [] },
    hint: "each waiver has check, host (a pattern, * for any), reason and expires (YYYY-MM-DD)",
  }).data.waivers;
}

export async function loadWaivers(file: string): Promise<Waiver[]> {
  return parseWaivers(await readConfigText(file, "--waivers names a YAML file of waivers"), file);
}

/** `web-*`, `db-?`: shell-style, on the whole host name. */
export function hostMatches(pattern: string, host: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i").test(host);
}

/**
 * Marks each failing, erroring or warning finding that a waiver names for this host. `today` is
 * YYYY-MM-DD; a waiver holds through its `expires` day.
 */
export function applyWaivers(
  findings: Finding[],
  waivers: readonly Waiver[],
  host: string,
  today: string,
): Finding[] {
  return findings.map((f) => {
    if (f.status === "pass" || f.status === "skip") return f;
    const w = waivers.find((x) => x.check === f.id && hostMatches(x.host, host));
    return w ? { ...f, waiver: { reason: w.reason, expires: w.expires, expired: w.expires < today } } : f;
  });
}
