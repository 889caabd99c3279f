import type { Fact } from "./fact.js";
import type { Host } from "./host.js";

export type Gatherer<T> = (ctx: FactContext) => Promise<Fact<T>>;

/**
 * Facts are gathered once per audit: every gatherer is memoised by identity, so layers that
 * share a fact (the users table, sshd's real port, the OpenClaw installs) read it once, and
 * independent gatherers run concurrently.
 */
export class FactContext {
  private readonly cache = new Map<Gatherer<unknown>, Promise<Fact<unknown>>>();

  constructor(readonly host: Host) {}

  get<T>(gatherer: Gatherer<T>): Promise<Fact<T>> {
    let p = this.cache.get(gatherer as Gatherer<unknown>);
    if (!p) {
      p = gatherer(this);
      this.cache.set(gatherer as Gatherer<unknown>, p);
    }
    return p as Promise<Fact<T>>;
  }
}
