import { defineConfig } from "vitest/config";

// Tests in a real headless Chromium (Debian's chromium package at /usr/bin/chromium). Apart
// from `npm test` so that it passes on a machine with only Node and npm; .ci/run runs both.
export default defineConfig({
  test: {
    include: ["test/**/*.browser.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
