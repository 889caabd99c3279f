import type { LayerCheck } from "./layer.js";
import { tmpLayer } from "./tmp.js";
import { updatesLayer } from "./updates.js";

/** Every layer's checks, in report order. */
export const LAYER_CHECKS: LayerCheck<unknown>[] = [tmpLayer, updatesLayer];
