/**
 * Properties of the shield's HTTP/1.1 request parser (front.ts), on request streams fast-check
 * makes up (request-streams.ts): valid ones, and ones with a byte put in, taken out or changed,
 * split into pieces anywhere, with pauses between them, their bodies taken at once, late or
 * with backpressure. Each property runs for a time budget, not a number of streams: seconds in
 * CI, more where CLAWGUARD_PROPERTY_MS says. The seed is printed; CLAWGUARD_PROPERTY_SEED replays
 * a run, and fast-check names the failing stream's path to replay it alone.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { frontConn, nodeConn, readAll } from "./front-harness.js";
import { departure } from "./parser-agreement.js";
import type { Outcome } from "./parser-servers.js";
import { requestStream, splitPlan, type SplitPlan } from "./request-streams.js";

const SEED = Number(process.env.CLAWGUARD_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const BUDGET_MS = Number(process.env.CLAWGUARD_PROPERTY_MS ?? 2500);
console.info(`front properties: seed ${SEED} (CLAWGUARD_PROPERTY_SEED=${SEED} replays this run)`);

interface Sample {
  bytes: Buffer;
  plan: SplitPlan;
}

const streams = requestStream.chain((text) => splitPlan(text.length).map((plan) => ({ text, plan })));

/** Check `property` on generated streams until the budget is spent; how many streams it saw. */
async function holds(property: (s: Sample) => Promise<void>): Promise<number> {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(streams, async ({ text, plan }) => {
      runs++;
      await property({ bytes: Buffer.from(text, "latin1"), plan });
    }),
    { seed: SEED, numRuns: 1_000_000, interruptAfterTimeLimit: BUDGET_MS },
  );
  return runs;
}

/** What must not change with how a stream was split or its bodies taken. */
const verdict = (o: Outcome) => ({
  reads: o.reads,
  ambiguous: o.ambiguous,
  failures: o.failures,
  refused: o.refused,
});

// Enough streams in each budget that a property that held checked something (the machine may be
// busy: a floor, not a rate).
const ENOUGH = 20;

describe("the shield's HTTP/1.1 parser, on generated request streams", () => {
  it("never throws out of its handlers, never hangs, and closes once the client is done", async () => {
    const runs = await holds(async ({ bytes, plan }) => {
      const r = await readAll(frontConn(plan.mode), bytes, plan.cuts, plan.gaps);
      expect(r.thrown).toBeNull();
      expect(r.closedAtEnd).toBe(true);
    });
    expect(runs).toBeGreaterThan(ENOUGH);
  }, 60_000);

  it("reads nothing Node's parser reads otherwise, and refuses only what a shared rule or a documented laxity of Node's explains", async () => {
    let read = 0;
    const runs = await holds(async ({ bytes }) => {
      const ours = await readAll(frontConn("eager"), bytes);
      const theirs = await readAll(nodeConn("eager"), bytes);
      expect(departure(ours.outcome, theirs.outcome, bytes.toString("latin1"))).toBeNull();
      read += ours.outcome.reads.filter((r, k) => r.body !== null && !ours.outcome.ambiguous[k]).length;
    });
    expect(runs).toBeGreaterThan(ENOUGH);
    // The streams were not all refused: requests and their bodies were compared.
    expect(read).toBeGreaterThan(runs / 10);
  }, 60_000);

  it("reads nothing after a request whose body framing it refused", async () => {
    let refused = 0;
    const runs = await holds(async ({ bytes, plan }) => {
      const { outcome } = await readAll(frontConn(plan.mode), bytes, plan.cuts, plan.gaps);
      const k = outcome.ambiguous.findIndex((a) => a !== null);
      if (k < 0) return;
      refused++;
      // Not another request, nor a fault found in the bytes after it: they were never parsed.
      expect(outcome.reads).toHaveLength(k + 1);
      expect(outcome.refused).toBeNull();
    });
    expect(runs).toBeGreaterThan(ENOUGH);
    expect(refused).toBeGreaterThan(0);
  }, 60_000);

  it("reads a stream the same however it is split, paused, and its bodies taken", async () => {
    let split = 0;
    const runs = await holds(async ({ bytes, plan }) => {
      const whole = await readAll(frontConn("eager"), bytes);
      const pieces = await readAll(frontConn(plan.mode), bytes, plan.cuts, plan.gaps);
      expect(verdict(pieces.outcome)).toEqual(verdict(whole.outcome));
      if (plan.cuts.some((c) => c > 0 && c < bytes.length)) split++;
    });
    expect(runs).toBeGreaterThan(ENOUGH);
    expect(split).toBeGreaterThan(runs / 4);
  }, 60_000);
});
