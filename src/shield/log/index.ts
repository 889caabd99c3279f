import { openLogStore, type LogStore } from "./store.js";

export { openLogStore, openLogReader } from "./store.js";
export type { LogStore, LogReader, LogStats, LogStoreOptions } from "./store.js";
export type { LogFilter, FollowOptions } from "./query.js";
export type { PruneOptions, PruneResult } from "./retention.js";
export type { Anchor, VerifyResult } from "./verify.js";
export { parseAnchor } from "./verify.js";
export { DECISIONS, GENESIS_HASH, scrubSecrets, type LogDecision, type StoredRecord } from "./record.js";
export { LogError } from "./schema.js";
export { changeOperator, changeRecord, CHANGE_METHODS, type ChangeKind } from "./changes.js";
export { registerLogMetrics } from "./metrics.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/** The store `log:` of shield.yaml names, with its retention. */
export function openConfiguredLog(log: {
  path: string;
  retentionDays?: number;
  maxBytes?: number;
}): LogStore {
  const retention =
    log.retentionDays !== undefined || log.maxBytes !== undefined
      ? {
          olderThanMs: log.retentionDays !== undefined ? log.retentionDays * DAY_MS : undefined,
          maxBytes: log.maxBytes,
        }
      : undefined;
  return openLogStore(log.path, { retention });
}
