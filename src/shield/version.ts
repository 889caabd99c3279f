import { createRequire } from "node:module";

/** This package's version, as the admin API and the metrics report it. */
export const SHIELD_VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string })
  .version;
