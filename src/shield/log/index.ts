export { openLogStore, openLogReader } from "./store.js";
export type { LogStore, LogReader, LogStats, LogStoreOptions } from "./store.js";
export type { LogFilter, FollowOptions } from "./query.js";
export type { PruneOptions, PruneResult } from "./retention.js";
export type { Anchor, VerifyResult } from "./verify.js";
export { parseAnchor } from "./verify.js";
export { DECISIONS, GENESIS_HASH, scrubSecrets, type LogDecision, type StoredRecord } from "./record.js";
export { LogError } from "./schema.js";
export { registerLogMetrics } from "./metrics.js";
