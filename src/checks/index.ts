import type { LayerCheck } from "./layer.js";
import { sshLayer } from "./ssh.js";
import { tmpLayer } from "./tmp.js";
import { updatesLayer } from "./updates.js";

/** Every layer's checks, in report order. */
export const LAYER_CHECKS: LayerCheck<unknown>[] = [sshLayer, tmpLayer, updatesLayer];
