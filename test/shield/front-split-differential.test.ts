/**
 * The differential test's request streams as a network delivers them: cut at random points or
 * byte by byte, with pauses between the writes, several requests to a stream, and bodies taken
 * by an owner that applies backpressure (stops after each piece, asks for more a turn later) or
 * takes them late. However a stream arrives, the front must read exactly what it reads of the
 * stream written whole (the same requests, bodies and refusals), and nothing that Node's parser,
 * sent the stream the same way, reads otherwise (parser-agreement.ts).
 *
 * Where the streams are cut, and how, comes from a seeded generator: the seed is printed, and
 * CLAWGUARD_DIFFERENTIAL_SEED replays a run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mutant, prng, REQUESTS } from "./differential.js";
import { listenPair, sendTcp, type Listening, type Pause } from "./front-tcp.js";
import { departure } from "./parser-agreement.js";
import { BODY_MODES, type BodyMode, type Outcome } from "./parser-servers.js";

const SEED = Number(process.env.CLAWGUARD_DIFFERENTIAL_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.info(`split differential: seed ${SEED} (CLAWGUARD_DIFFERENTIAL_SEED=${SEED} replays this run)`);

const pairs = new Map<BodyMode, { front: Listening; node: Listening }>();

beforeAll(async () => {
  for (const mode of BODY_MODES) pairs.set(mode, await listenPair(mode));
});

afterAll(async () => {
  for (const { front, node } of pairs.values()) await Promise.all([front.close(), node.close()]);
});

/** What must not change with how a stream was cut, paused, or its bodies taken. */
const verdict = (o: Outcome) =>
  JSON.stringify({ reads: o.reads, ambiguous: o.ambiguous, failures: o.failures, refused: o.refused });

interface Plan {
  how: string;
  cuts: number[];
  pauses: Pause[];
  mode: BodyMode;
}

/** Cut at up to 8 random points with random pauses, or byte by byte with a turn after each. */
function plans(rand: () => number, length: number): Plan[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const cuts = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * length)).sort(
    (a, b) => a - b,
  );
  const pauses = cuts.map(() => pick<Pause>(["none", "turn", "sleep"]));
  return [
    { how: `cut at ${cuts.join(",")}, pauses ${pauses.join(",")}`, cuts, pauses, mode: pick(BODY_MODES) },
    {
      how: "byte by byte",
      cuts: Array.from({ length }, (_, i) => i + 1),
      pauses: ["turn"],
      mode: pick(BODY_MODES),
    },
  ];
}

describe("however a request stream arrives", () => {
  it("the front reads what it reads of it whole, and nothing Node's parser reads otherwise", async () => {
    const rand = prng(SEED);
    // One request, or two to four back to back: pipelined, so that each one's end is tested.
    const inputs = Array.from({ length: 1200 }, (_, n) => {
      const text =
        n % 3 === 2
          ? Array.from({ length: 2 + Math.floor(rand() * 3) }, () => mutant(rand, REQUESTS)).join("")
          : mutant(rand, REQUESTS);
      // Drawn here, in order, not while streams are in flight: the seed alone replays them.
      return { text, plans: plans(rand, Buffer.byteLength(text, "latin1")) };
    });
    const found: string[] = [];
    let read = 0;
    let sent = 0;
    const one = async ({ text, plans }: { text: string; plans: Plan[] }) => {
      const bytes = Buffer.from(text, "latin1");
      const whole = await sendTcp(pairs.get("eager")!.front.port, bytes);
      for (const plan of plans) {
        const { front, node } = pairs.get(plan.mode)!;
        const [ours, theirs] = await Promise.all([
          sendTcp(front.port, bytes, plan.cuts, plan.pauses),
          sendTcp(node.port, bytes, plan.cuts, plan.pauses),
        ]);
        sent++;
        read += ours.outcome.reads.filter((r) => r.body !== null).length;
        const where = `${JSON.stringify(text)} ${plan.how}, bodies taken ${plan.mode}`;
        if (ours.hung) found.push(`${where}: the front hung`);
        else if (verdict(ours.outcome) !== verdict(whole.outcome))
          found.push(`${where}: read ${verdict(ours.outcome)}, whole ${verdict(whole.outcome)}`);
        const d = departure(ours.outcome, theirs.outcome, text);
        if (d) found.push(`${where}: ${d}`);
      }
    };
    for (let i = 0; i < inputs.length; i += 40) await Promise.all(inputs.slice(i, i + 40).map(one));
    expect(found.slice(0, 5), `seed ${SEED}`).toEqual([]);
    expect(sent).toBe(inputs.length * 2);
    // Enough of them were read to the end of a body for the comparison to mean something.
    expect(read).toBeGreaterThan(inputs.length / 4);
  }, 240_000);
});
