import type { Host } from "../host.js";
import { isMissing } from "../errors.js";

function globToRegExp(seg: string): RegExp {
  let re = "";
  for (const c of seg) {
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Expand a glob(7) pattern on the audited system, sorted as glob(3) sorts. */
export async function expandGlob(host: Host, pattern: string): Promise<string[]> {
  const parts = pattern.split("/").filter(Boolean);
  let paths = [""];
  for (const part of parts) {
    const next: string[] = [];
    if (!/[*?]/.test(part)) {
      for (const p of paths) next.push(`${p}/${part}`);
    } else {
      const re = globToRegExp(part);
      for (const p of paths) {
        let entries;
        try {
          entries = await host.readDir(p || "/");
        } catch (err) {
          if (isMissing(err)) continue;
          throw err;
        }
        for (const e of entries) if (re.test(e.name) && !e.name.startsWith(".")) next.push(`${p}/${e.name}`);
      }
    }
    paths = next;
  }
  if (!/[*?]/.test(pattern)) return paths;
  const existing: string[] = [];
  for (const p of paths) if (await host.stat(p)) existing.push(p);
  return existing.sort();
}
