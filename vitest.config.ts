import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // test/pg needs PostgreSQL's binaries and skips, saying so, without them (pg-harness.ts).
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
