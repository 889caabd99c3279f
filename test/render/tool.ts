import { spawnSync } from "node:child_process";

/**
 * Whether a system tool a test drives for real is installed. In CI a missing tool is a broken
 * machine, not a reason to skip: the test fails there instead of passing silently.
 */
export function haveTool(name: string): boolean {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).status === 0;
  if (!found && process.env.CI === "true") throw new Error(`${name} is not installed; .ci/run installs it`);
  return found;
}
