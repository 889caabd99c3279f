import type { Evidence } from "./finding.js";

/**
 * Evidence names its path once. Its source says where (`/etc/x`, `/etc/x line 5`, `/etc/x:5`);
 * an excerpt that names that same file again says only what is new: `(/etc/x line 7)` becomes
 * `(line 7)`, and `(/etc/x)`, a trailing `in /etc/x` and a leading `/etc/x: ` go. A source that
 * names several files, or none, leaves the excerpt as it is: there the path tells them apart.
 */
export function pathOnce(e: Evidence): Evidence {
  const m = /^(\/[^\s:,]*)(?::\d+| line \d+)?$/.exec(e.source);
  if (!m || m[1] === "/") return e;
  const p = m[1]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const excerpt = e.excerpt
    .replace(new RegExp(`\\(${p}(?::| line )(\\d+)\\)`, "g"), "(line $1)")
    .replace(new RegExp(` ?\\(${p}\\)`, "g"), "")
    .replace(new RegExp(` in ${p}(?=$|[;)\\n])`, "gm"), "")
    .replace(new RegExp(`^${p}: `), "");
  return excerpt === e.excerpt || excerpt.trim() === "" ? e : { ...e, excerpt };
}
