import type { Fact } from "../facts/fact.js";
import type { FactKey, FactTypes } from "../facts/keys.js";
import { GATHERERS } from "./gather/index.js";
import type { Host } from "./host.js";

export type Gatherer<T> = (ctx: FactContext) => Promise<Fact<T>>;

/**
 * Facts are gathered once per context: each is memoised by its key, so layers (and harden's
 * planners) that share a fact (the users table, sshd's real port, the OpenClaw installs) read
 * it once, and independent facts are read concurrently.
 */
/** How the slow gatherers behave; every field has a default. */
export interface ContextOptions {
  /** How long OpenClaw's own audit may take, each run. */
  openclawAuditTimeoutMs?: number;
  /** Where OpenClaw's audit results are kept, by binary version and config hash; none when absent. */
  cacheDir?: string;
  /** Told when a slow step starts and ends, so a terminal can show that it is running. */
  progress?: (event: "start" | "end", what: string, limitMs: number) => void;
}

export class FactContext {
  private readonly cache = new Map<FactKey, Promise<Fact<unknown>>>();

  constructor(
    readonly host: Host,
    readonly options: ContextOptions = {},
  ) {}

  get<K extends FactKey>(key: K): Promise<Fact<FactTypes[K]>> {
    let p = this.cache.get(key);
    if (!p) {
      p = GATHERERS[key](this);
      this.cache.set(key, p);
    }
    return p as Promise<Fact<FactTypes[K]>>;
  }
}
