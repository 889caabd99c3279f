import type { Problem } from "./fact.js";

/** What stat(2) says of a path, as far as the checks care. */
export interface FileStat {
  mode: number; // permission bits only (0o7777)
  uid: number;
  gid: number;
  size: number;
  type: "file" | "dir" | "symlink" | "other";
}

/** Owner and mode of chosen paths, null for a path that does not exist. */
export interface PathStats {
  stats: Record<string, FileStat | null>;
  problems: Problem[];
}
