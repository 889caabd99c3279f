import type { Fact, Problem } from "../facts/fact.js";
import { pathOnce } from "./evidence.js";
import type { Evidence, Finding, Layer, Severity, Status } from "./finding.js";

export interface CatalogEntry {
  severity: Severity;
  title: string;
  remediation: string;
  fixable: boolean;
}

/**
 * What one finding may say beyond its check's catalog entry. The title is not among them: it is
 * always the catalog's, the goal stated as what must hold, so a check keeps one name in every
 * report, rule list, test name and waiver. What this host's finding adds goes in `detail`.
 */
interface Overrides {
  /** This finding's result in one line: what was found, in the finding's own words. */
  detail?: string;
  remediation?: string;
  severity?: Severity;
}

export interface FindingMaker {
  readonly id: string;
  readonly entry: CatalogEntry;
  pass(evidence: Evidence, o?: Overrides): Finding;
  fail(evidence: Evidence, o?: Overrides): Finding;
  warn(evidence: Evidence, o?: Overrides): Finding;
  skip(reason: string, source?: string): Finding;
  error(problem: Problem): Finding;
  /** pass when `ok`, else fail: the common shape of a check. */
  verdict(ok: boolean, evidence: Evidence, o?: Overrides): Finding;
}

const all = new Map<string, CatalogEntry & { layer: Layer }>();

/** Every id a layer can emit, registered when its module loads: the stable, documented list. */
export function catalogEntries(): Array<CatalogEntry & { id: string; layer: Layer }> {
  return [...all].map(([id, e]) => ({ id, ...e })).sort((a, b) => a.id.localeCompare(b.id));
}

export function catalog<K extends string>(
  layer: Layer,
  entries: Record<K, CatalogEntry>,
): Record<K, FindingMaker> {
  const out = {} as Record<K, FindingMaker>;
  for (const key of Object.keys(entries) as K[]) {
    const entry = entries[key];
    const id = `${layer}.${key}`;
    all.set(id, { layer, ...entry });
    const make = (status: Status, evidence: Evidence, o: Overrides = {}): Finding => ({
      id,
      layer,
      severity: o.severity ?? entry.severity,
      status,
      title: entry.title,
      ...(o.detail ? { detail: o.detail } : {}),
      // A skip's reason is shown without its source (skips fold by reason), so it keeps its path.
      evidence: status === "skip" ? evidence : pathOnce(evidence),
      remediation: status === "pass" || status === "skip" ? "" : (o.remediation ?? entry.remediation),
      fixable: status === "fail" || status === "warn" ? entry.fixable : false,
    });
    out[key] = {
      id,
      entry,
      pass: (e, o) => make("pass", e, o),
      fail: (e, o) => make("fail", e, o),
      warn: (e, o) => make("warn", e, o),
      skip: (reason, source = "") => make("skip", { source, excerpt: reason }),
      // The source says where; the excerpt says what went wrong there, without saying where again.
      error: (p) =>
        make("error", {
          source: p.line !== undefined ? `${p.source}:${p.line}` : p.source,
          excerpt: p.message,
        }),
      verdict: (okay, e, o) => make(okay ? "pass" : "fail", e, o),
    };
  }
  return out;
}

/**
 * The common guard at the top of a check: when the fact it needs could not be read, say so
 * under `maker` (error or skip) and return null; otherwise return the value.
 */
export function need<T>(fact: Fact<T>, maker: FindingMaker, out: Finding[]): T | null {
  if (fact.status === "ok") return fact.value;
  if (fact.status === "skip") out.push(maker.skip(fact.reason));
  else for (const p of fact.problems) out.push(maker.error(p));
  return null;
}

/** Parts of an `ok` fact that could not be read, each as an `error` finding under `maker`. */
export function partialProblems<T>(fact: Fact<T>, maker: FindingMaker): Finding[] {
  return fact.status === "ok" ? fact.problems.map((p) => maker.error(p)) : [];
}
