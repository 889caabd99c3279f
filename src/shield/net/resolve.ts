import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Decision, Target } from "../types.js";

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Turns a name into addresses; tests inject their own to play DNS tricks on loopback. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

const lookupResolver: Resolver = async (host) => {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * `base`, with one lookup per name shared by every request that asks within `reuseMs` of it
 * (including those that ask while it is still running). A failed lookup is not reused. This
 * never weakens the rebinding guard: `resolveChecked` judges the answers on every use and the
 * proxy dials the address it judged; reuse only spares the thread pool a getaddrinfo (and the
 * resolver a query) per request to a busy destination.
 */
export function reusingResolver(base: Resolver, reuseMs: number, maxNames = 10_000): Resolver {
  const recent = new Map<string, { until: number; answers: Promise<ResolvedAddress[]> }>();
  return (host) => {
    const now = Date.now();
    const hit = recent.get(host);
    if (hit && hit.until > now) return hit.answers;
    const entry = { until: now + reuseMs, answers: base(host) };
    // Bounded without bookkeeping: at worst every name is looked up once more.
    if (recent.size >= maxNames) recent.clear();
    recent.set(host, entry);
    entry.answers.catch(() => {
      if (recent.get(host) === entry) recent.delete(host);
    });
    return entry.answers;
  };
}

/** getaddrinfo (so /etc/hosts and nsswitch count), each name's answers shared for one second. */
export const systemResolver: Resolver = reusingResolver(lookupResolver, 1000);

export type CheckedAddress =
  /** Every answer passed; `address` is the one to dial, and the only one. */
  | { ok: true; address: string; family: 4 | 6; decision: Decision }
  /** An answer was refused: `address` is the first refused one and `decision` says why. */
  | { ok: false; refused: true; address: string; decision: Decision }
  /** The name did not resolve (or resolved to nothing); nothing was refused by policy. */
  | { ok: false; refused: false; reason: string };

/**
 * Resolve `target` once, judge every answer with `check`, and return the single address to
 * dial. The caller must dial exactly that address and never the name again: a second lookup
 * could be answered differently (DNS rebinding). One refused answer refuses the whole name,
 * because a client library given the same name might pick any of them.
 */
export async function resolveChecked(
  target: Target,
  check: (address: string) => Decision,
  resolver: Resolver = systemResolver,
): Promise<CheckedAddress> {
  let answers: ResolvedAddress[];
  if (target.ip) {
    answers = [target.ip];
  } else {
    try {
      answers = await resolver(target.host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
      return { ok: false, refused: false, reason: `resolve ${target.host}: ${code}` };
    }
  }
  return checkAnswers(target, answers, check);
}

/**
 * The synchronous half of `resolveChecked`: judge `answers` (already resolved for `target`) and
 * pick the one to dial. An IP literal needs no lookup, so `checkAnswers(t, [t.ip], check)`
 * decides it without leaving the current turn of the event loop.
 */
export function checkAnswers(
  target: Target,
  answers: readonly ResolvedAddress[],
  check: (address: string) => Decision,
): CheckedAddress {
  // Answers that are not IP addresses would be resolved again by connect(); refuse them.
  const valid = answers.filter((a) => isIP(a.address) === a.family);
  if (valid.length === 0 || valid.length !== answers.length) {
    return { ok: false, refused: false, reason: `resolve ${target.host}: no usable address` };
  }
  let chosen: { address: string; family: 4 | 6; decision: Decision } | null = null;
  for (const answer of valid) {
    const decision = check(answer.address);
    if (decision.verdict !== "allow") return { ok: false, refused: true, address: answer.address, decision };
    chosen ??= { address: answer.address, family: answer.family, decision };
  }
  // `valid` is non-empty, so the loop set `chosen`.
  return { ok: true, ...chosen! };
}
