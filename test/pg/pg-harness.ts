/**
 * The store's tests against a real PostgreSQL (cluster.ts): one cluster per test file; each test
 * takes a database of its own.
 *
 * Without PostgreSQL's binaries the tests are skipped, saying why, so that `npm test` passes
 * where only Node is installed; CI installs postgresql and sets CLAWGUARD_REQUIRE_POSTGRES=1,
 * which turns a missing server into a failure instead of a skip.
 */
import { describe } from "vitest";
import { NO_POSTGRES } from "./cluster.js";

export { NO_POSTGRES, ROLE, ROLE_PASSWORD, SUPERUSER_PASSWORD, TestPostgres } from "./cluster.js";

if (NO_POSTGRES !== null) {
  if (process.env.CLAWGUARD_REQUIRE_POSTGRES === "1")
    throw new Error(`CLAWGUARD_REQUIRE_POSTGRES=1, but ${NO_POSTGRES}`);
  process.stderr.write(`skipping the shared store's tests: ${NO_POSTGRES}\n`);
}

/** Time for a test that starts a cluster, three shields, and stops PostgreSQL under load. */
export const PG_TIMEOUT = 120_000;

/** `describe` for tests that need PostgreSQL: skipped, with the reason in its name, without it. */
export function describePg(name: string, fn: () => void): void {
  if (NO_POSTGRES !== null) describe.skip(`${name} (skipped: ${NO_POSTGRES})`, fn);
  else describe(name, { timeout: PG_TIMEOUT }, fn);
}
