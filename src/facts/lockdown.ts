import type { Problem } from "./fact.js";

export const LOCKDOWN_TABLE = "inet clawguard_egress";
export const LOCKDOWN_FILE = "/etc/clawguard/lockdown.nft";
export const LOCKDOWN_UNIT = "clawguard-lockdown.service";
/** What an nftables text says about the lockdown table. */
export interface NftSummary {
  hasTable: boolean;
  /** An output chain with `policy drop`. */
  dropsOutput: boolean;
}

export function summarizeNft(text: string): NftSummary {
  const hasTable = /table\s+inet\s+clawguard_egress\b/.test(text);
  const dropsOutput = /type\s+filter\s+hook\s+output\s+priority\s+[^;]+;\s*policy\s+drop\s*;/.test(text);
  return { hasTable, dropsOutput };
}

export interface LockdownState {
  /** The persisted ruleset, when the file exists. */
  file?: NftSummary & { path: string };
  fileProblem?: Problem;
  /** The unit that loads it at boot, when installed. */
  unit?: { path: string; enabled: boolean; enabledBy?: string };
  /** The kernel's table now: summary, absent (null), or why it could not be asked. */
  live:
    | { table: NftSummary; command: string }
    | { absent: string; command: string }
    | { skip: string }
    | { problem: Problem };
}
