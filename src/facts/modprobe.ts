/**
 * modprobe's configuration: the `blacklist` and `install` lines of the modprobe.d files, read
 * in the order kmod reads them (by file name across the directories, /etc masking the rest).
 */
export const MODPROBE_DIRS = [
  "/etc/modprobe.d",
  "/run/modprobe.d",
  "/usr/local/lib/modprobe.d",
  "/usr/lib/modprobe.d",
  "/lib/modprobe.d",
];

export interface ModprobeRule {
  kind: "blacklist" | "install";
  /** As written; kmod treats `-` and `_` in a module name alike. */
  module: string;
  /** The command of an `install` line. */
  command?: string;
  source: string;
  line: number;
}

export interface ModprobeFact {
  files: string[];
  rules: ModprobeRule[];
}

export function parseModprobeConf(text: string, source: string): ModprobeRule[] {
  const out: ModprobeRule[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    const m = /^(blacklist|install)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) return;
    const kind = m[1] as ModprobeRule["kind"];
    out.push({
      kind,
      module: m[2]!,
      ...(kind === "install" ? { command: (m[3] ?? "").trim() } : {}),
      source,
      line: i + 1,
    });
  });
  return out;
}

const sameModule = (a: string, b: string) => a.replaceAll("-", "_") === b.replaceAll("-", "_");

/** An install command that loads nothing: `/bin/true`, `/bin/false` and the like. */
function loadsNothing(command: string): boolean {
  return /^(\/usr)?(\/bin\/)?(true|false)$/.test(command);
}

/**
 * The line that keeps `module` from loading, even when asked for by name or as another module's
 * dependency: an `install` that runs a no-op in place of insmod. A blacklist line alone only
 * stops loading by alias. Like modprobe, the first install line read for the module counts.
 */
export function moduleDisabledBy(f: ModprobeFact, module: string): ModprobeRule | undefined {
  const first = f.rules.find((r) => r.kind === "install" && sameModule(r.module, module));
  return first && loadsNothing(first.command ?? "") ? first : undefined;
}
