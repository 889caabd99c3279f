import { parseLocatedUnit, type LocatedUnit } from "../../facts/units.js";
import type { FactContext } from "../context.js";
import { isMissing } from "../errors.js";

export interface ReadUnit {
  unit: LocatedUnit;
  /** The unit file, then its drop-ins in the order systemd applies them. */
  sources: string[];
}

function dropInDirs(path: string, scope: "system" | "user"): string[] {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const shared =
    scope === "system"
      ? ["/usr/lib/systemd/system", "/lib/systemd/system", "/run/systemd/system", "/etc/systemd/system"]
      : ["/usr/lib/systemd/user", "/etc/systemd/user"];
  return [...new Set([...shared.map((d) => `${d}/${name}.d`), `${path}.d`])];
}

/**
 * Read a unit and the drop-ins of its scope. Drop-ins with the same name shadow each other
 * (the later directory wins), then apply in name order. Null when the unit does not exist.
 */
export async function readScopedUnit(
  ctx: FactContext,
  path: string,
  scope: "system" | "user",
): Promise<ReadUnit | null> {
  let text: string;
  try {
    text = await ctx.host.readFile(path);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  const unit = parseLocatedUnit(text, path);
  const sources = [path];
  const dropIns = new Map<string, string>();
  for (const dir of dropInDirs(path, scope)) {
    try {
      for (const e of await ctx.host.readDir(dir))
        if (e.name.endsWith(".conf")) dropIns.set(e.name, `${dir}/${e.name}`);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }
  for (const name of [...dropIns.keys()].sort()) {
    const p = dropIns.get(name)!;
    parseLocatedUnit(await ctx.host.readFile(p), p, unit);
    sources.push(p);
  }
  return { unit, sources };
}
