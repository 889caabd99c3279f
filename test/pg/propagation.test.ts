import { afterAll, beforeAll, expect, it } from "vitest";
import { TableResolver, Upstream, sha256, v4 } from "../shield/proxy-harness.js";
import { describePg, NO_POSTGRES, PG_TIMEOUT, TestPostgres } from "./pg-harness.js";
import { type Node, removeNodeDirs, startNode, until } from "./nodes-harness.js";

const SCOUT = "scout-proxy-password";
const ROVER = "rover-proxy-password";
const resolver = new TableResolver({ "web.test": v4("127.0.0.3"), "new.test": v4("127.0.0.3") });
const policy = `tiers:
  crew: { allow: [web.test, 127.0.0.3/32] }
fleets:
  acme: { isolation: isolated }
agents:
  - { id: scout, fleet: acme, tier: crew, token_sha256: "${sha256(SCOUT)}" }
  - { id: rover, tier: crew, token_sha256: "${sha256(ROVER)}" }
`;

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

async function three(): Promise<Node[]> {
  const url = pgd.url(await pgd.database());
  const a = await startNode("a", url, policy, { resolver: resolver.resolve });
  return [
    a,
    ...(await Promise.all(["b", "c"].map((n) => startNode(n, url, policy, { resolver: resolver.resolve })))),
  ];
}

/** How long until every node in `nodes` answers `want` for the request; polled every 10 ms. */
async function reached(
  nodes: Node[],
  host: string,
  agent: string,
  pass: string,
  want: number,
): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    nodes.map((n) =>
      until(
        async () => (await n.get(`http://${host}:${web.port}/`, agent, pass)) === want,
        `${n.name} answers ${want}`,
        10_000,
      ),
    ),
  );
  return performance.now() - t0;
}

describePg("three nodes sharing PostgreSQL", () => {
  it("apply a rule added, an agent revoked and a mode switched on node A within 1 s on B and C", async () => {
    const [a, b, c] = await three();
    try {
      const others = [b!, c!];
      const url = `http://new.test:${web.port}/`;
      for (const n of [a!, b!, c!]) expect(await n.get(url, "scout", SCOUT)).toBe(403);
      const times: number[] = [];

      let t0 = performance.now();
      expect(
        (
          await a!.api("POST", "/api/rules", {
            level: "tier",
            name: "crew",
            verdict: "allow",
            rule: "new.test",
          })
        ).status,
      ).toBe(201);
      times.push(performance.now() - t0 + (await reached(others, "new.test", "scout", SCOUT, 200)));

      t0 = performance.now();
      expect(
        (await a!.api("PUT", "/api/mode", { scope: "fleet", id: "acme", mode: "lockdown" })).status,
      ).toBe(200);
      times.push(performance.now() - t0 + (await reached(others, "web.test", "scout", SCOUT, 403)));
      // Rover is in no fleet: the lockdown of acme is not his.
      for (const n of others) expect(await n.get(`http://web.test:${web.port}/`, "rover", ROVER)).toBe(200);

      t0 = performance.now();
      expect((await a!.api("DELETE", "/api/agents", { id: "rover" })).status).toBe(200);
      times.push(performance.now() - t0 + (await reached(others, "web.test", "rover", ROVER, 407)));

      console.log(`change reached B and C in ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
      for (const t of times) expect(t).toBeLessThan(1000);
      // What each node says it holds is the store's revision, and the nodes agree.
      const revisions = await Promise.all(
        [a!, b!, c!].map(async (n) => (await n.api("GET", "/api/status")).json.store.revision),
      );
      expect(new Set(revisions).size).toBe(1);
    } catch (e) {
      for (const n of [a, b, c])
        console.log(
          n?.name,
          JSON.stringify((await n!.api("GET", "/api/rules")).json),
          await n!.get(`http://new.test:${web.port}/`, "scout", SCOUT),
          JSON.stringify(n!.managed.control.lastReload),
        );
      throw e;
    } finally {
      await Promise.all([a, b, c].map((n) => n?.close()));
    }
  });
});
