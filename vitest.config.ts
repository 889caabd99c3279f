import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // test/pg needs PostgreSQL's binaries and skips, saying so, without them (pg-harness.ts).
    include: ["test/**/*.test.ts"],
    // They drive a real browser: `npm run test:browser` (vitest.browser.config.ts) runs them.
    exclude: ["test/**/*.browser.test.ts", "**/node_modules/**"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
