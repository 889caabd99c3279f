/**
 * What an npm package tarball holds, read without unpacking it: whether its dependencies are
 * bundled in it (bundleDependencies), which lets it install where no registry can be reached.
 * Pure: gzip and the tar headers only.
 */
import { gunzipSync } from "node:zlib";

export class TarballError extends Error {}

/** Every entry's path in a gzipped tar (ustar names with their prefix). */
export function tarballEntries(gz: Buffer): string[] {
  let tar: Buffer;
  try {
    tar = gunzipSync(gz);
  } catch {
    throw new TarballError("not a gzipped tarball");
  }
  const names: string[] = [];
  let longName: string | null = null;
  for (let off = 0; off + 512 <= tar.length;) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, len: number) => {
      const raw = header.subarray(start, start + len);
      const end = raw.indexOf(0);
      return raw.subarray(0, end < 0 ? len : end).toString("utf8");
    };
    const size = parseInt(field(124, 12).trim() || "0", 8);
    if (!Number.isFinite(size)) throw new TarballError("a tar header is damaged");
    const type = field(156, 1);
    const body = tar.subarray(off + 512, off + 512 + size);
    if (type === "L") longName = body.toString("utf8").replace(/\0.*$/s, "");
    else if (type !== "x" && type !== "g") {
      const prefix = field(345, 155);
      names.push(longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100)));
      longName = null;
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

/** The tarball is an npm package (package/package.json) and carries its node_modules. */
export function describeTarball(gz: Buffer): { isPackage: boolean; bundled: boolean } {
  const names = tarballEntries(gz);
  return {
    isPackage: names.includes("package/package.json"),
    bundled: names.some((n) => n.startsWith("package/node_modules/")),
  };
}
