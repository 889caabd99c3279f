import { credentialsLayer } from "./credentials.js";
import { egressLayer } from "./egress.js";
import { fail2banLayer } from "./fail2ban.js";
import { firewallLayer } from "./firewall.js";
import { gatewayLayer } from "./gateway.js";
import { kernelLayer } from "./kernel.js";
import type { LayerCheck } from "./layer.js";
import { openclawLayer } from "./openclaw.js";
import { sshLayer } from "./ssh.js";
import { systemdLayer } from "./systemd.js";
import { tmpLayer } from "./tmp.js";
import { updatesLayer } from "./updates.js";
import { userLayer } from "./user.js";

/** Every layer's checks, in report order. */
export const LAYER_CHECKS: LayerCheck[] = [
  gatewayLayer,
  userLayer,
  systemdLayer,
  firewallLayer,
  fail2banLayer,
  sshLayer,
  kernelLayer,
  tmpLayer,
  credentialsLayer,
  updatesLayer,
  egressLayer,
  openclawLayer,
];
