import { createHash } from "node:crypto";
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), `clawguard-${prefix}-`));
  made.push(d);
  return d;
}

/** Every entry under `root` with its type, mode, owner and content checksum (or link target). */
export function snapshot(root: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    const st = lstatSync(abs);
    const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(abs)} ${st.uid}:${st.gid}`;
    else if (st.isDirectory()) {
      if (rel) out[rel] = `dir ${meta}`;
      for (const n of readdirSync(abs)) {
        const r = rel ? `${rel}/${n}` : n;
        if (!skip.includes(r)) walk(r);
      }
    } else out[rel] = `file ${meta} ${createHash("sha256").update(readFileSync(abs)).digest("hex")}`;
  };
  walk("");
  return out;
}
