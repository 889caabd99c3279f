/**
 * A budget held by three nodes at once, against the bound budget-share.ts documents: with every
 * node admitting at most r requests a second, the nodes together pass a limit by at most
 * (N - 1) x r x 1 s. Randomized: each round draws the limit, the rate and where each node starts,
 * from a seed printed with every round, so a failure can be replayed (CLAWGUARD_BUDGET_SEED).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { MERGE_INTERVAL_MS } from "../../src/shield/store/budget-share.js";
import { Upstream, sha256 } from "../shield/proxy-harness.js";
import { describePg, NO_POSTGRES, PG_TIMEOUT, TestPostgres } from "./pg-harness.js";
import { type Node, removeNodeDirs, startNode } from "./nodes-harness.js";

const SCOUT = "scout-proxy-password";
const N = 3;
/** How late a node may learn of another's counts: one merge there, one more here. */
const LAG_S = (2 * MERGE_INTERVAL_MS) / 1000;
const noResolver = async () => [];

let pgd: TestPostgres;
let web: Upstream;
beforeAll(async () => {
  if (NO_POSTGRES !== null) return;
  [pgd, web] = await Promise.all([TestPostgres.start(), new Upstream("127.0.0.3").start()]);
}, PG_TIMEOUT);
afterAll(async () => {
  removeNodeDirs();
  await Promise.all([pgd?.stop(), web?.stop()]);
});

/** mulberry32: small, seeded, good enough to draw test parameters. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Requests through `node` at `rate` a second from `startMs` until `endMs` (both on
 * performance.now()), each sent on its own schedule; how many were admitted and refused.
 */
async function paced(
  node: Node,
  url: string,
  rate: number,
  startMs: number,
  endMs: number,
): Promise<{ admitted: number; refused: number; other: number }> {
  const out = { admitted: 0, refused: 0, other: 0 };
  const sent: Array<Promise<void>> = [];
  for (let k = 0; ; k++) {
    const at = startMs + (k * 1000) / rate;
    if (at >= endMs) break;
    await sleep(at - performance.now());
    sent.push(
      node.get(url, "scout", SCOUT).then((status) => {
        if (status === 200) out.admitted += 1;
        else if (status === 403) out.refused += 1;
        else out.other += 1;
      }),
    );
  }
  await Promise.all(sent);
  return out;
}

describePg("a budget shared by three nodes", () => {
  it("is never passed by more than (N - 1) x rate x 1 s, over randomized rounds", async () => {
    const seed0 = Number(process.env.CLAWGUARD_BUDGET_SEED ?? Date.now() % 1_000_000);
    const rounds = 3;
    for (let round = 0; round < rounds; round++) {
      const seed = seed0 + round;
      const rand = prng(seed);
      const rate = 10 + Math.floor(rand() * 30);
      const bound = Math.ceil((N - 1) * rate * LAG_S);
      // Nodes that did not share would pass the limit by (N - 1) x limit: more than the bound.
      const limit = Math.ceil(bound / (N - 1)) + 5 + Math.floor(rand() * 50);
      const starts = Array.from({ length: N }, () => Math.floor(rand() * 600));
      const policy = `agents:
  - id: scout
    token_sha256: "${sha256(SCOUT)}"
    allow: [127.0.0.3/32]
    budget: { requests: ${limit}, window: 1h }
`;
      const url = pgd.url(await pgd.database());
      const nodes: Node[] = [await startNode("a", url, policy, { resolver: noResolver })];
      nodes.push(
        ...(await Promise.all(["b", "c"].map((n) => startNode(n, url, policy, { resolver: noResolver })))),
      );
      try {
        // Long enough for the three together to spend the limit, and for every view to catch up.
        const t0 = performance.now() + 200;
        const runMs = (limit / (N * rate)) * 1000 + 600 + 2 * LAG_S * 1000;
        const results = await Promise.all(
          nodes.map((n, i) => paced(n, `http://127.0.0.3:${web.port}/`, rate, t0 + starts[i]!, t0 + runMs)),
        );
        const admitted = results.reduce((s, r) => s + r.admitted, 0);
        const line = `seed ${seed}: limit ${limit}, ${rate}/s per node, starts ${starts.join("/")} ms: admitted ${results.map((r) => r.admitted).join("+")} = ${admitted}, over by ${admitted - limit} (bound ${bound})`;
        console.log(line);
        expect(
          results.every((r) => r.other === 0),
          line,
        ).toBe(true);
        // Every node ends up refusing: the budget is spent for all of them.
        expect(
          results.every((r) => r.refused > 0),
          line,
        ).toBe(true);
        expect(admitted, line).toBeGreaterThanOrEqual(limit);
        expect(admitted - limit, line).toBeLessThanOrEqual(bound);
        // And once the counts have met in the store, no node admits one more.
        await sleep(2 * MERGE_INTERVAL_MS + 100);
        for (const n of nodes)
          expect(await n.get(`http://127.0.0.3:${web.port}/`, "scout", SCOUT), line).toBe(403);
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    }
  });
});
