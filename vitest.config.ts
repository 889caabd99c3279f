import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Those need PostgreSQL: npm run test:pg (vitest.pg.config.ts).
    exclude: [...configDefaults.exclude, "test/pg/**"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
