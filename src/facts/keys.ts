import type { AptConfFact } from "./aptconf.js";
import type { AptSourcesFact } from "./apt-sources.js";
import type { BannersFact } from "./banners.js";
import type { CoredumpFact } from "./coredump.js";
import type { CredentialsFact } from "./credentials.js";
import type { DockerFact } from "./docker.js";
import type { Fact } from "./fact.js";
import type { Fail2banFact } from "./fail2ban.js";
import type { LiveFirewallFact, OwnedSocket } from "./firewall-live.js";
import type { LockdownState } from "./lockdown.js";
import type { LoginDefsFact } from "./login-defs.js";
import type { ModprobeFact } from "./modprobe.js";
import type { TmpFact } from "./mounts.js";
import type { OpenClawFact } from "./openclaw.js";
import type { OpenClawAuditRun } from "./openclaw-audit.js";
import type { PackagesFact } from "./packages.js";
import type { Listener } from "./sockets.js";
import type { SshdFact } from "./sshd.js";
import type { RoutesFact } from "./routes.js";
import type { PathStats } from "./stat.js";
import type { SudoersFact } from "./sudoers.js";
import type { SysctlFact } from "./sysctl.js";
import type { ExposureResult } from "./systemd-analyze.js";
import type { UfwFact } from "./ufw.js";
import type { UpdatesFact } from "./updates.js";
import type { UsersFact } from "./users.js";
import type { WireguardLinkFact } from "./wireguard-link.js";

/**
 * Every fact by its stable key. A layer names the keys it reads; gathered facts are stored and
 * exchanged under these names, so renaming one is a change of format.
 */
export interface FactTypes {
  users: UsersFact;
  sudoers: SudoersFact;
  packages: PackagesFact;
  apt: AptConfFact;
  updates: UpdatesFact;
  tmp: TmpFact;
  ufw: UfwFact;
  firewallLive: LiveFirewallFact;
  socketOwners: OwnedSocket[];
  listeners: Listener[];
  docker: DockerFact;
  sshd: SshdFact;
  fail2ban: Fail2banFact;
  openclaw: OpenClawFact;
  openclawAudit: OpenClawAuditRun[];
  /** Owner and mode of each install's state dir and its user's home. */
  servicePaths: PathStats;
  /** systemd-analyze's exposure score of each gateway unit, by unit path. */
  exposure: Record<string, ExposureResult>;
  credentials: CredentialsFact;
  lockdown: LockdownState;
  routes: RoutesFact;
  /** The WireGuard configs here and, live, the interface that carries each proxy address. */
  wireguardLink: WireguardLinkFact;
  aptSources: AptSourcesFact;
  sysctl: SysctlFact;
  coredump: CoredumpFact;
  /** modprobe.d: which kernel modules cannot be loaded. */
  modprobe: ModprobeFact;
  /** The notices shown before login. */
  banners: BannersFact;
  loginDefs: LoginDefsFact;
}

export type FactKey = keyof FactTypes;

/** Facts by key: what the checks of the selected layers read. */
export type Facts = { [K in FactKey]: Fact<FactTypes[K]> };
