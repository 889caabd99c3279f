import type { FactKey, Facts } from "../facts/keys.js";
import type { Finding, Layer } from "./finding.js";
import { LAYER_CHECKS } from "./index.js";
import type { LayerCheck } from "./layer.js";

/** The layers asked for, in report order. */
function layerChecks(layers: readonly Layer[]): LayerCheck[] {
  const wanted = new Set(layers);
  return LAYER_CHECKS.filter((l) => wanted.has(l.layer));
}

/** Every fact the given layers read, each once. */
export function factsNeeded(layers: readonly Layer[]): FactKey[] {
  return [...new Set(layerChecks(layers).flatMap((l) => l.needs))];
}

/**
 * Judge gathered facts: each selected layer's checks, in report order. Pure, so facts gathered
 * on one server (and carried as JSON) give the same findings wherever they are judged.
 */
export function judge(facts: Partial<Facts>, layers: readonly Layer[]): Finding[] {
  return layerChecks(layers).flatMap((l) => {
    const missing = l.needs.filter((k) => facts[k] === undefined);
    if (missing.length > 0)
      throw new Error(`the ${l.layer} checks need facts that were not gathered: ${missing.join(", ")}`);
    try {
      return l.check(facts as Facts);
    } catch (err) {
      // A bug in one layer must not hide the others: report it where it happened.
      return [
        {
          id: `${l.layer}.internal_error`,
          layer: l.layer,
          severity: "high",
          status: "error",
          title: `The ${l.layer} checks run to the end`,
          detail: `The ${l.layer} checks failed unexpectedly`,
          evidence: {
            source: "clawguard",
            excerpt: err instanceof Error ? (err.stack ?? err.message) : String(err),
          },
          remediation: "Report this with the excerpt; the other layers' results still stand.",
          fixable: false,
        },
      ];
    }
  });
}
