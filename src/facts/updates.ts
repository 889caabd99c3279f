export const UNATTENDED_LOG = "/var/log/unattended-upgrades/unattended-upgrades.log";

export interface UpdatesFact {
  /** Epoch ms of the last line of unattended-upgrades' log, with the line; undefined when no log. */
  lastRun?: { at: number; line: string };
  /** apt-daily-upgrade.timer is pulled in at boot. */
  timerEnabled: boolean;
  /** When the facts were read, so the check stays a pure function of them. */
  now: number;
  /** needrestart's `$nrconf{restart}`, the last assignment in its config and conf.d snippets. */
  needrestartMode?: { value: string; source: string; line: number };
}

export const NEEDRESTART_CONF = "/etc/needrestart/needrestart.conf";
export const NEEDRESTART_CONF_D = "/etc/needrestart/conf.d";

/**
 * The last `$nrconf{restart} = 'a';` of a needrestart config file (Perl): `a` restarts services
 * by itself, `l` only lists them, `i` asks, which under unattended-upgrades means nobody answers.
 */
export function needrestartMode(
  text: string,
  source: string,
): { value: string; source: string; line: number } | undefined {
  let found: { value: string; source: string; line: number } | undefined;
  text.split("\n").forEach((raw, i) => {
    const m = /^\s*\$nrconf\{restart\}\s*=\s*(["'])([^"']*)\1\s*;/.exec(raw);
    if (m) found = { value: m[2]!, source, line: i + 1 };
  });
  return found;
}

/** The last timestamp ("2026-11-25 06:12:01,123 INFO ...") of unattended-upgrades' log. */
export function lastLogTimestamp(text: string): { at: number; line: string } | undefined {
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})/.exec(lines[i]!);
    if (m) return { at: Date.parse(`${m[1]}T${m[2]}Z`), line: lines[i]!.trim() };
  }
  return undefined;
}
