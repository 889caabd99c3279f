import { factsNeeded, judge } from "../checks/judge.js";
import { LAYERS, type Finding, type Layer } from "../checks/finding.js";
import type { Fact } from "../facts/fact.js";
import type { Facts } from "../facts/keys.js";
import { FactContext } from "../host/context.js";
import type { Host } from "../host/host.js";

/**
 * The audit joins the two halves that must not know each other: the host's gatherers (I/O)
 * and the checks (pure). It asks the selected layers which facts they read, gathers each of
 * those once and concurrently, and hands them to the checks.
 */

export interface AuditReport {
  schema: "clawguard.audit/v1";
  /** clawguard's version. */
  version?: string;
  root: string;
  /** The audited system's name and OS, as its own files give them. */
  system?: { hostname: string; os: string };
  asRoot: boolean;
  startedAt: string;
  durationMs: number;
  layers: Layer[];
  findings: Finding[];
  summary: Record<Finding["status"], number>;
}

/** Facts gathered on one system: plain data, to be judged there or written out and judged elsewhere. */
export interface FactSet {
  schema: "clawguard.facts/v1";
  root: string;
  asRoot: boolean;
  gatheredAt: string;
  facts: Partial<Facts>;
}

export interface AuditOptions {
  layers?: Layer[];
  /** Findings to report (the rest of a gathered layer is left out); all when absent. */
  keep?: (f: Finding) => boolean;
  /** Gather through this context, so a caller reading the same system (harden) reads each fact once. */
  context?: FactContext;
}

/** Gather, concurrently and each once, every fact the given layers read. */
export async function gatherFacts(ctx: FactContext, layers: readonly Layer[]): Promise<FactSet> {
  const gatheredAt = new Date().toISOString();
  const keys = factsNeeded(layers);
  const values = await Promise.all(keys.map((k) => ctx.get(k)));
  const facts: Partial<Record<keyof Facts, Fact<unknown>>> = {};
  keys.forEach((k, i) => (facts[k] = values[i]));
  return {
    schema: "clawguard.facts/v1",
    root: ctx.host.root,
    asRoot: ctx.host.isRoot,
    gatheredAt,
    facts: facts as Partial<Facts>,
  };
}

/** Gather what the selected layers need and judge it. */
export async function runAudit(host: Host, opts: AuditOptions = {}): Promise<AuditReport> {
  const started = Date.now();
  const wanted = new Set(opts.layers ?? LAYERS);
  const layers = LAYERS.filter((l) => wanted.has(l));
  const set = await gatherFacts(opts.context ?? new FactContext(host), layers);
  const findings = judge(set.facts, layers).filter(opts.keep ?? (() => true));
  const summary = { pass: 0, fail: 0, warn: 0, skip: 0, error: 0 };
  for (const f of findings) summary[f.status]++;
  return {
    schema: "clawguard.audit/v1",
    root: host.root,
    asRoot: host.isRoot,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    layers,
    findings,
    summary,
  };
}
