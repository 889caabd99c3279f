export const TMP_OPTIONS = ["rw", "noexec", "nosuid", "nodev", "size=512M", "mode=1777"];
export const TMP_FSTAB_LINE = `tmpfs /tmp tmpfs ${TMP_OPTIONS.join(",")} 0 0`;

/** fstab with one noexec /tmp line: an existing /tmp line is replaced in place, else appended. */
export function fstabWithTmp(text: string): string {
  const lines = text.split("\n");
  const isTmp = (l: string) => {
    const f = l.trim().split(/\s+/);
    return !l.trim().startsWith("#") && f.length >= 2 && (f[1] === "/tmp" || f[1] === "/tmp/");
  };
  const at = lines.findIndex(isTmp);
  if (at >= 0) {
    const f = lines[at]!.trim().split(/\s+/);
    // Keep what mounts it (a disk, a tmpfs); only the options change.
    const opts = new Set(
      (f[3] ?? "defaults").split(",").filter((o) => !/^(exec|suid|dev|defaults)$/.test(o)),
    );
    for (const o of ["noexec", "nosuid", "nodev"]) opts.add(o);
    f[3] = [...opts].join(",");
    while (f.length < 6) f.push("0");
    lines[at] = f.join(" ");
    return lines.filter((l, i) => i === at || !isTmp(l)).join("\n");
  }
  const body = text === "" || text.endsWith("\n") ? text : text + "\n";
  return body + TMP_FSTAB_LINE + "\n";
}

/** A tmp.mount drop-in (Debian 13, where /tmp is systemd's tmpfs) with the safe options. */
export function renderTmpMountDropIn(current: string[]): string {
  const opts = current.filter((o) => !/^(exec|suid|dev|defaults)$/.test(o));
  for (const o of ["mode=1777", "strictatime", "noexec", "nosuid", "nodev"])
    if (!opts.includes(o)) opts.push(o);
  // systemd expands % in unit files: keep a literal size=50% as %%.
  const escaped = opts.map((o) => o.replace(/(?<!%)%(?!%)/g, "%%"));
  return ["# Written by clawguard harden.", "[Mount]", `Options=${escaped.join(",")}`, ""].join("\n");
}

export const APT_TEMPDIR = "/var/cache/apt/tmp";

/** debconf's templates are extracted and run from here instead of a noexec /tmp. */
export function renderAptTempDir(): string {
  return `// Written by clawguard harden: /tmp is noexec, so apt extracts templates here.\nAPT::ExtractTemplates::TempDir "${APT_TEMPDIR}";\n`;
}
