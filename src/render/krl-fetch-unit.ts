/**
 * The agent's KRL fetch as systemd runs it: a oneshot service running `clawguard ssh-ca
 * fetch-krl --from URL`, and a timer starting it every 15 s (so a revocation is on the agent
 * well within a minute of `shield revoke-grant`). A failed fetch leaves the list in place;
 * the journal and `audit` (ssh.krl_fresh) say so. Pure.
 */

export const KRL_FETCH_SERVICE = "clawguard-krl-fetch.service";
export const KRL_FETCH_TIMER = "clawguard-krl-fetch.timer";
export const KRL_FETCH_SERVICE_FILE = `/etc/systemd/system/${KRL_FETCH_SERVICE}`;
export const KRL_FETCH_TIMER_FILE = `/etc/systemd/system/${KRL_FETCH_TIMER}`;
export const KRL_FETCH_TIMER_LINK = `/etc/systemd/system/timers.target.wants/${KRL_FETCH_TIMER}`;
/** Seconds between fetches. */
export const KRL_FETCH_INTERVAL_S = 15;
/** How clawguard is run when the planner is told nothing else (cloud-init installs it there). */
export const DEFAULT_LAUNCHER = ["/usr/local/bin/clawguard"];

/**
 * A URL as the unit may name it: http(s), a host (name, IPv4 or [IPv6]) and port, a plain path;
 * no spaces, quotes or % (systemd would read them in ExecStart), no credentials.
 */
export const KRL_URL = /^https?:\/\/[A-Za-z0-9.:[\]_-]+(\/[A-Za-z0-9._~/-]*)?$/;
/** An absolute path as ExecStart may name it. */
export const LAUNCHER_PATH = /^\/[A-Za-z0-9._/+-]+$/;

/** `launcher` and `url` match LAUNCHER_PATH and KRL_URL (the profile checks them). */
export function renderKrlFetchService(launcher: readonly string[], url: string): string {
  const argv = [...launcher, "ssh-ca", "fetch-krl", "--from", url];
  return [
    "# Written by clawguard harden --ssh-ca --krl-from: the fleet's KRL from the shield.",
    "[Unit]",
    "Description=clawguard: fetch the fleet's SSH key revocation list from the shield",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    `ExecStart=${argv.join(" ")}`,
    "TimeoutStartSec=30s",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "ProtectHome=yes",
    "ProtectSystem=strict",
    "ReadWritePaths=/etc/ssh/clawguard /var/lib/clawguard",
    "",
  ].join("\n");
}

export function renderKrlFetchTimer(): string {
  return [
    "# Written by clawguard harden --ssh-ca --krl-from.",
    "[Unit]",
    "Description=clawguard: fetch the fleet's SSH KRL every few seconds",
    "",
    "[Timer]",
    "OnBootSec=5s",
    `OnUnitActiveSec=${KRL_FETCH_INTERVAL_S}s`,
    "AccuracySec=1s",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
}
