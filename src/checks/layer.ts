import type { FactContext } from "../host/context.js";
import type { Finding, Layer } from "./finding.js";

/**
 * One layer of the checklist: which facts it needs (gathered through the shared context) and a
 * pure function from those facts to findings.
 */
export interface LayerCheck<F> {
  layer: Layer;
  gather(ctx: FactContext): Promise<F>;
  check(facts: F): Finding[];
}

/** Erase the fact type so layers of different shapes can share one list. */
export function defineLayer<F>(l: LayerCheck<F>): LayerCheck<unknown> {
  return l as LayerCheck<unknown>;
}
