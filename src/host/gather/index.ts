import type { FactKey, FactTypes } from "../../facts/keys.js";
import type { Gatherer } from "../context.js";
import { gatherAptConf } from "./aptconf.js";
import { gatherAptSources } from "./apt-sources.js";
import { gatherBanners } from "./banners.js";
import { gatherCredentials } from "./credentials.js";
import { gatherDocker } from "./docker.js";
import { gatherFail2ban } from "./fail2ban.js";
import { gatherLiveFirewall, gatherSocketOwners } from "./firewall-live.js";
import { gatherLockdown } from "./lockdown.js";
import { gatherLoginDefs } from "./login-defs.js";
import { gatherModprobe } from "./modprobe.js";
import { gatherTmp } from "./mounts.js";
import { gatherOpenClaw } from "./openclaw.js";
import { gatherOpenClawAudit } from "./openclaw-audit.js";
import { gatherPackages } from "./packages.js";
import { gatherRoutes } from "./routes.js";
import { gatherServicePaths } from "./service-paths.js";
import { gatherListeners } from "./sockets.js";
import { gatherSshd } from "./sshd.js";
import { gatherSudoers } from "./sudoers.js";
import { gatherExposure } from "./systemd-analyze.js";
import { gatherCoredump, gatherSysctl } from "./sysctl.js";
import { gatherUfw } from "./ufw.js";
import { gatherUpdates } from "./updates.js";
import { gatherUsers } from "./users.js";
import { gatherWireguardLink } from "./wireguard-link.js";

/** How each fact is read from a system. */
export const GATHERERS: { [K in FactKey]: Gatherer<FactTypes[K]> } = {
  users: gatherUsers,
  sudoers: gatherSudoers,
  packages: gatherPackages,
  apt: gatherAptConf,
  updates: gatherUpdates,
  tmp: gatherTmp,
  ufw: gatherUfw,
  firewallLive: gatherLiveFirewall,
  socketOwners: gatherSocketOwners,
  listeners: gatherListeners,
  docker: gatherDocker,
  sshd: gatherSshd,
  fail2ban: gatherFail2ban,
  openclaw: gatherOpenClaw,
  openclawAudit: gatherOpenClawAudit,
  servicePaths: gatherServicePaths,
  exposure: gatherExposure,
  routes: gatherRoutes,
  credentials: gatherCredentials,
  lockdown: gatherLockdown,
  wireguardLink: gatherWireguardLink,
  aptSources: gatherAptSources,
  sysctl: gatherSysctl,
  coredump: gatherCoredump,
  modprobe: gatherModprobe,
  banners: gatherBanners,
  loginDefs: gatherLoginDefs,
};
