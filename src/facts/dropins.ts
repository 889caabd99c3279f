import { entry } from "./record.js";

/**
 * The `.conf` drop-ins systemd (and `sysctl --system`) read, in the order they apply, given the
 * names in each directory: sorted by file name across all of them, and a name in an earlier
 * (higher precedence) directory masking the same name in a later one.
 */
export function dropInOrder(dirs: readonly string[], listing: Record<string, string[]>): string[] {
  const byName = new Map<string, string>();
  for (const dir of dirs)
    for (const name of entry(listing, dir) ?? [])
      if (name.endsWith(".conf") && !byName.has(name)) byName.set(name, `${dir}/${name}`);
  return [...byName.keys()].sort().map((n) => byName.get(n)!);
}
