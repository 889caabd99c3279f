import { catalogEntries } from "../checks/catalog.js";
import { isLayer, LAYERS, type Finding, type Layer } from "../checks/finding.js";
import { UsageError } from "../errors.js";

/**
 * What `--layer` and `--skip` pick: each entry is a layer or one check's id. The layers to
 * gather are those asked for (a check id brings its layer), less the layers skipped; the
 * findings kept are those asked for, less the checks skipped.
 */
export interface Selection {
  layers: Layer[];
  keep(f: Finding): boolean;
}

/** OpenClaw's own checks get their ids from its audit, so any `openclaw.NAME` may be one. */
function isCheckId(s: string): boolean {
  if (s.startsWith("openclaw.") && s.length > "openclaw.".length) return true;
  return catalogEntries().some((e) => e.id === s);
}

function parseEntry(flag: string, s: string): { layer: Layer; id?: string } {
  if (isLayer(s)) return { layer: s };
  const layer = s.split(".")[0]!;
  if (isLayer(layer) && isCheckId(s)) return { layer, id: s };
  throw new UsageError(
    isLayer(layer)
      ? `${flag} ${s}: no such check (clawguard checks lists every id)`
      : `${flag} ${s}: neither a layer (${LAYERS.join(", ")}) nor a check id`,
  );
}

export function selectChecks(layerArgs: readonly string[] = [], skipArgs: readonly string[] = []): Selection {
  const asked = layerArgs.map((s) => parseEntry("--layer", s));
  const skipped = skipArgs.map((s) => parseEntry("--skip", s));
  const skippedLayers = new Set(skipped.filter((e) => !e.id).map((e) => e.layer));
  const skippedIds = new Set(skipped.flatMap((e) => (e.id ? [e.id] : [])));
  for (const a of asked) {
    const clash = a.id ? skippedIds.has(a.id) || skippedLayers.has(a.layer) : skippedLayers.has(a.layer);
    if (clash)
      throw new UsageError(
        `--layer ${a.id ?? a.layer} and --skip ${a.id && skippedIds.has(a.id) ? a.id : a.layer} ask for opposite things`,
        { hint: "name each layer or check in one of the two" },
      );
  }
  const askedLayers = new Set(asked.filter((e) => !e.id).map((e) => e.layer));
  const askedIds = new Set(asked.flatMap((e) => (e.id ? [e.id] : [])));
  const wanted = asked.length === 0 ? new Set<Layer>(LAYERS) : new Set(asked.map((e) => e.layer));
  return {
    layers: LAYERS.filter((l) => wanted.has(l) && !skippedLayers.has(l)),
    keep: (f) =>
      !skippedIds.has(f.id) && (asked.length === 0 || askedLayers.has(f.layer) || askedIds.has(f.id)),
  };
}
