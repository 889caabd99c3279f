import { defineConfig } from "vitest/config";

// The shared store's tests against a real PostgreSQL 15 (apt-get install postgresql): each file
// starts a cluster of its own in a temp dir, and several shield nodes on loopback.
export default defineConfig({
  test: {
    include: ["test/pg/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
