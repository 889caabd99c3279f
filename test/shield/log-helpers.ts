import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];

afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory for one test's database files, removed after the file's tests. */
export function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "clawguard-log-"));
  made.push(dir);
  return dir;
}

export function tempDb(): string {
  return path.join(tempDir(), "shield.db");
}

export { record } from "./log-records.js";
