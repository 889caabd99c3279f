/**
 * A reader that stops early (`clawguard checks | head -1`) closes the pipe under clawguard:
 * it ends without a word on stderr, through the real entry point.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");

function withClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    // Closed before the child has started, so its first write meets a pipe nobody reads.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

describe("a closed stdout", () => {
  it.each([["checks"], ["checks", "--json"], ["--help"]])(
    "ends `clawguard %s` quietly",
    async (...args) => {
      const r = await withClosedStdout(args);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
    },
    60_000,
  );
});
