import type { FactKey, Facts } from "../facts/keys.js";
import type { Finding, Layer } from "./finding.js";

/**
 * One layer of the checklist: the facts it reads, by key, and a pure function from those facts
 * to findings. The audit gathers what the selected layers need, each fact once.
 */
export interface LayerCheck<K extends FactKey = FactKey> {
  layer: Layer;
  needs: readonly K[];
  check(facts: Pick<Facts, K>): Finding[];
}

/** Tie a layer's checks to the keys it names, so it cannot read a fact it did not ask for. */
export function defineLayer<K extends FactKey>(l: LayerCheck<K>): LayerCheck<K> {
  return l;
}
