import { defineConfig } from "vitest/config";

// e2e tests boot containers and build network namespaces: they need root, run one file at a
// time (they share the cached Debian root) and may take minutes each.
export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    fileParallelism: false,
  },
});
