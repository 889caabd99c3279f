import { vi } from "vitest";
import { main } from "../../src/cli/main.js";

/** `clawguard ARGS` in this process: its exit code and what it wrote to stdout and stderr. */
export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  vi.spyOn(process.stdout, "write").mockImplementation(
    (s: string | Uint8Array) => ((out += String(s)), true),
  );
  vi.spyOn(process.stderr, "write").mockImplementation(
    (s: string | Uint8Array) => ((err += String(s)), true),
  );
  try {
    const code = await main(["node", "clawguard", ...args]);
    return { code, out, err };
  } finally {
    vi.restoreAllMocks();
  }
}
