/**
 * What the store shares besides the policy (schema v2): operators, SSH grants with the KRL, and
 * agents' WireGuard keys, on three real nodes; and the migration of a v1 store in place.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseKrlListing } from "../../src/facts/krl.js";
import { caDirOf, SshCa } from "../../src/shield/ssh/ca.js";
import { migrate, schemaVersion, STORE_SCHEMA_VERSION } from "../../src/shield/store/schema.js";
import { enrollAgent, revokeAgent } from "../../src/shield/wireguard/enroll.js";
import { generateKeyPair } from "../../src/shield/wireguard/keys.js";
import { StoreAgents } from "../../src/shield/wireguard/sync-store.js";
import { loadShieldConfig } from "../../src/shield/config.js";
import { sha256 } from "../shield/proxy-harness.js";
import { ROLE, ROLE_PASSWORD, describePg, NO_POSTGRES, PG_TIMEOUT, TestPostgres } from "./pg-harness.js";
import { type Node, nodeDir, removeNodeDirs, startNode, until } from "./nodes-harness.js";

const run = promisify(execFile);
const ROVER = "rover-proxy-password";
const policy = `fleets:
  acme: { isolation: isolated }
agents:
  - { id: rover, fleet: acme, token_sha256: "${sha256(ROVER)}", allow: [127.0.0.3/32] }
`;
const noResolver = async () => [];
/** The nodes' tunnel range: on loopback, so the proxy and the KRL listener bind without an interface. */
const SHIELD_IP = "127.0.77.1";

let pgd: TestPostgres;
let keys: string;
beforeAll(async () => {
  keys = mkdtempSync(path.join(tmpdir(), "clawguard-share-keys-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(keys, "id")]);
  if (NO_POSTGRES !== null) return;
  pgd = await TestPostgres.start();
}, PG_TIMEOUT);
afterAll(async () => {
  removeNodeDirs();
  rmSync(keys, { recursive: true, force: true });
  await pgd?.stop();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, SHIELD_IP, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A node on WireGuard (its interface need not exist: nothing here sets peers), serving the KRL. */
async function wgDir(name: string, url: string): Promise<{ dir: string; file: string }> {
  const d = nodeDir(name, url, policy);
  // Join codes name the proxy's port and the KRL's: real ones, free now.
  const [proxy, krl] = [await freePort(), await freePort()];
  const key = path.join(d.dir, "wireguard.key");
  writeFileSync(key, generateKeyPair().privateKey + "\n", { mode: 0o600 });
  const text = readFileSync(d.file, "utf8").replace(
    "listen: 127.0.0.1:0\n",
    `listen: ${SHIELD_IP}:${proxy}
wireguard:
  interface: cgshare0
  listen_port: 51820
  address: [${SHIELD_IP}/24]
  private_key_file: wireguard.key
  status_file: wg-status.json
  endpoint: 203.0.113.5:51820
ssh_access: { krl_listen: "${SHIELD_IP}:${krl}" }
`,
  );
  writeFileSync(d.file, text);
  return d;
}

async function three(opts: { caOn?: string } = {}): Promise<Node[]> {
  const url = pgd.url(await pgd.database());
  const dirs: Array<{ n: string; d: { dir: string; file: string } }> = [];
  for (const n of ["a", "b", "c"]) dirs.push({ n, d: await wgDir(n, url) });
  for (const { n, d } of dirs) if (opts.caOn === n) await new SshCa(caDirOf(d.file)).init();
  const a = await startNode("a", url, policy, { resolver: noResolver, dir: dirs[0]!.d });
  return [
    a,
    ...(await Promise.all(
      dirs.slice(1).map(({ n, d }) => startNode(n, url, policy, { resolver: noResolver, dir: d })),
    )),
  ];
}

/** An admin API call with a token of one's own. */
async function as(node: Node, token: string, method: string, p: string, body?: unknown) {
  const res = await fetch(`${node.admin}${p}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json().catch(() => null)) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any -- many shapes of answer
}

/** How long until every node answers `want` to the token; polled every 10 ms. */
async function authenticates(nodes: Node[], token: string, want: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    nodes.map((n) =>
      until(
        async () => (await as(n, token, "GET", "/api/status")).status === want,
        `${n.name}: ${want}`,
        10_000,
      ),
    ),
  );
  return performance.now() - t0;
}

/** GET the KRL from a node's listener as the agent at `source` (an enrolled tunnel address). */
function fetchKrl(node: Node, source: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: SHIELD_IP, port: node.managed.krl!.port, path: "/ssh/krl", localAddress: source, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
  });
}

/** The KRL's version, and whether it revokes the certificate (ssh-keygen -Q). */
async function krlSays(krl: Buffer, cert: string): Promise<{ version: number; revoked: boolean }> {
  const dir = mkdtempSync(path.join(keys, "krl-"));
  writeFileSync(path.join(dir, "krl"), krl);
  writeFileSync(path.join(dir, "cert.pub"), cert + "\n");
  const listing = await run("ssh-keygen", ["-Q", "-l", "-f", path.join(dir, "krl")]);
  const q = await run("ssh-keygen", ["-Q", "-f", path.join(dir, "krl"), path.join(dir, "cert.pub")]).then(
    () => false,
    () => true,
  );
  return { version: parseKrlListing(listing.stdout + listing.stderr)!.version, revoked: q };
}

describePg("operators shared through the store", () => {
  it("authenticates an operator added on A on B and C within 1 s, and refuses one removed on B", async () => {
    const [a, b, c] = await three();
    try {
      const added = await a!.api("POST", "/api/operators", {
        name: "olga",
        role: "operator",
        fleets: ["acme"],
      });
      expect(added.status, JSON.stringify(added.json)).toBe(201);
      const token = added.json.token as string;
      const reach = await authenticates([b!, c!], token, 200);
      expect(reach).toBeLessThan(1000);
      const seen = await as(c!, token, "GET", "/api/status");
      expect(seen.json.operator).toEqual({ name: "olga", role: "operator", fleets: ["acme"] });
      // Listed everywhere, and never with its token.
      const listed = (await c!.api("GET", "/api/operators")).json.operators;
      expect(listed.map((o: { name: string }) => o.name)).toEqual(["admin", "olga"]);
      expect(JSON.stringify(listed)).not.toContain(sha256(token));

      expect((await b!.api("DELETE", "/api/operators", { name: "olga" })).status).toBe(200);
      const gone = await authenticates([a!, c!], token, 401);
      expect(gone).toBeLessThan(1000);
      console.log(
        `operator added: ${reach.toFixed(0)} ms to B and C; removed: ${gone.toFixed(0)} ms to A and C`,
      );

      // A fleet the store does not have is refused, and nothing is added anywhere.
      const bad = await a!.api("POST", "/api/operators", { name: "zoe", role: "viewer", fleets: ["nope"] });
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ field: "fleets", error: 'fleet "nope" is not defined under fleets' });
      const dup = await c!.api("POST", "/api/operators", { name: "admin", role: "viewer" });
      expect(dup.status).toBe(409);
      expect((await b!.api("GET", "/api/operators")).json.operators).toHaveLength(1);
      // shield.yaml was not touched: operators are the store's.
      expect(readFileSync(a!.file, "utf8")).not.toContain("olga");
    } finally {
      await Promise.all([a!.close(), b!.close(), c!.close()]);
    }
  });
});

describePg("SSH grants shared through the store", () => {
  it("lists a grant made on A on B, revokes it on B, and C serves a newer KRL that revokes it", async () => {
    const [a, b, c] = await three({ caOn: "a" });
    try {
      // An agent on the tunnel, so that something may fetch the KRL.
      const scout = await enrollAgent({
        configFile: a!.file,
        id: "scout",
        expiresInMs: 3_600_000,
        live: false,
      });
      const source = scout.addresses[0]!.split("/")[0]!;
      await until(async () => c!.managed.control.cfg.agents.some((x) => x.id === "scout"), "c to know scout");
      const before = await fetchKrl(c!, source);
      expect(before.status).toBe(200);

      const pub = readFileSync(path.join(keys, "id.pub"), "utf8");
      // B holds no CA key: it cannot sign, and says so.
      const refused = await b!.api("POST", "/api/grants", { agent: "rover", key: pub, for: "1h" });
      expect(refused.status).toBe(409);
      const granted = await a!.api("POST", "/api/grants", { agent: "rover", key: pub, for: "1h" });
      expect(granted.status, JSON.stringify(granted.json)).toBe(201);
      const serial = granted.json.grant.serial as number;
      const listed = (await b!.api("GET", "/api/grants")).json.grants;
      expect(listed.map((g: { serial: number; state: string }) => [g.serial, g.state])).toEqual([
        [serial, "active"],
      ]);

      const t0 = performance.now();
      const revoked = await b!.api("DELETE", "/api/grants", { serial });
      expect(revoked.status, JSON.stringify(revoked.json)).toBe(200);
      const cert = granted.json.certificate as string;
      const after = await until(
        async () => {
          const k = await fetchKrl(c!, source);
          const says = await krlSays(k.body, cert);
          return says.revoked ? says : undefined;
        },
        "c to serve the KRL",
        60_000,
      );
      const ms = performance.now() - t0;
      console.log(`grant revoked on B: in the KRL C serves after ${ms.toFixed(0)} ms`);
      expect(ms).toBeLessThan(60_000);
      expect(after.version).toBeGreaterThan((await krlSays(before.body, cert)).version);
      // A serves the same list: one version across nodes, so an agent moved keeps taking it.
      const fromA = await krlSays((await fetchKrl(a!, source)).body, cert);
      await until(async () => (await krlSays((await fetchKrl(a!, source)).body, cert)).revoked, "a too");
      expect(fromA.version).toBeLessThanOrEqual(after.version);
      expect((await c!.api("GET", "/api/grants")).json.grants[0]).toMatchObject({
        serial,
        state: "revoked",
        revokedBy: "admin",
      });
      // The next grant's serial follows the store's, whichever node made the last.
      const next = await a!.api("POST", "/api/grants", { agent: "rover", key: pub, for: "1h" });
      expect(next.json.grant.serial).toBe(serial + 1);
    } finally {
      await Promise.all([a!.close(), b!.close(), c!.close()]);
    }
  });
});

describePg("agents' WireGuard keys shared through the store", () => {
  it("shows the key of an agent enrolled through A on B within 1 s, and a move carries it", async () => {
    const [a, b, c] = await three();
    try {
      const t0 = performance.now();
      const r = await enrollAgent({
        configFile: a!.file,
        id: "scout",
        fleet: "acme",
        presharedKey: true,
        expiresInMs: 3_600_000,
        live: false,
      });
      // From the enrolment's commit (its return) to B applying it.
      const enrolled = performance.now();
      const onB = await until(
        async () => b!.managed.control.cfg.agents.find((x) => x.id === "scout"),
        "b to know scout",
        5000,
      );
      const ms = performance.now() - enrolled;
      console.log(
        `agent enrolled through A in ${(enrolled - t0).toFixed(0)} ms: its key on B ${ms.toFixed(0)} ms later`,
      );
      expect(ms).toBeLessThan(1000);
      const psk = path.join(a!.dir, "wireguard-psk", "scout.psk");
      expect(onB).toMatchObject({
        fleet: "acme",
        sources: r.addresses,
        wireguard: { publicKey: r.publicKey, presharedKeyFile: psk },
      });
      // The key file is A's: named in the store, its contents never.
      expect(readFileSync(psk, "utf8").trim()).toHaveLength(44);
      expect(readFileSync(a!.file, "utf8")).not.toContain("scout");
      const owners = async (n: Node) =>
        Object.fromEntries(
          ((await n.api("GET", "/api/agents")).json.agents as Array<{ id: string; node: string }>).map(
            (x) => [x.id, x.node],
          ),
        );
      await until(async () => (await owners(c!)).scout === "a", "c to know scout is carried by a", 5000);
      // The next one gets the next address, as allocated against the store's agents.
      const mate = await enrollAgent({
        configFile: a!.file,
        id: "mate",
        expiresInMs: 3_600_000,
        live: false,
      });
      expect(mate.addresses).not.toEqual(r.addresses);

      expect((await a!.api("POST", "/api/agents/move", { agent: "scout", to: "c" })).status).toBe(200);
      await until(async () => (await owners(b!)).scout === "c", "b to see the move");
      expect(c!.managed.control.cfg.agents.find((x) => x.id === "scout")?.wireguard?.publicKey).toBe(
        r.publicKey,
      );
      const drained = await b!.api("POST", "/api/nodes/drain", { node: "a" });
      expect(drained.status).toBe(200);
      await until(async () => (await owners(c!)).mate !== "a", "the drain");
      expect(b!.managed.control.cfg.agents.find((x) => x.id === "mate")?.wireguard?.publicKey).toBe(
        mate.publicKey,
      );
      // What wireguard-sync makes the peers of each node's interface: the agents it carries.
      const peers = new StoreAgents();
      try {
        const peersOf = async (n: Node) =>
          (await peers.carried(await loadShieldConfig(n.file))).agents
            .filter((x) => x.wireguard)
            .map((x) => [x.id, x.wireguard?.publicKey]);
        expect(await peersOf(c!)).toEqual([["scout", r.publicKey]]);
        expect(await peersOf(b!)).toEqual([["mate", mate.publicKey]]);
        expect(await peersOf(a!)).toEqual([]);
      } finally {
        await peers.close();
      }

      // Enrolled twice under one key: refused, and nothing changes.
      await expect(
        enrollAgent({
          configFile: b!.file,
          id: "third",
          publicKey: r.publicKey,
          expiresInMs: 1000,
          live: false,
        }),
      ).rejects.toThrow(/agent "scout" already has this public key/);

      // Revoked on the command line of a node: out of the store, so out of every node's config.
      const gone = await revokeAgent({ configFile: b!.file, id: "scout", live: false, waitForShieldMs: 0 });
      expect(gone.publicKey).toBe(r.publicKey);
      for (const n of [a!, b!, c!])
        await until(
          async () => (n.managed.control.cfg.agents.some((x) => x.id === "scout") ? undefined : true),
          `${n.name} to drop scout`,
          1000,
        );
      await expect(
        revokeAgent({ configFile: a!.file, id: "scout", live: false, waitForShieldMs: 0 }),
      ).rejects.toThrow(/no agent "scout" in the store/);
    } finally {
      await Promise.all([a!.close(), b!.close(), c!.close()]);
    }
  });
});

describePg("a store of schema v1", () => {
  it("migrates in place, keeping its policy; and a clawguard that knows only v1 then refuses it", async () => {
    const db = await pgd.database();
    const url = pgd.url(db);
    const pool = new pg.Pool({
      host: "127.0.0.1",
      port: pgd.port,
      user: ROLE,
      password: ROLE_PASSWORD,
      database: db,
      max: 2,
    });
    pool.on("error", () => undefined);
    try {
      await migrate(pool, url, 1);
      expect(await schemaVersion(pool)).toBe(1);
      // What a v1 node seeded: its policy rows, as v1 wrote them.
      await pool.query(`INSERT INTO clawguard.policy (one, revision, seeded_by, mode) VALUES (true, 7, 'old', 'enforce');
        INSERT INTO clawguard.nodes (name, version, proxy) VALUES ('old', '0.9.0', '127.0.0.1:1');
        INSERT INTO clawguard.fleets (name, isolation) VALUES ('acme', 'isolated');
        INSERT INTO clawguard.agents (id, fleet, token_sha256, node) VALUES ('veteran', 'acme', '${sha256("v")}', 'old');
        INSERT INTO clawguard.rules (level, name, verdict, rule) VALUES ('agent', 'veteran', 'allow', 'old.test')`);
      const VIC = "vic-admin-token-0123456789abcdef0123";
      const withVic = `${policy}operators:\n  - { name: vic, role: viewer, token_sha256: "${sha256(VIC)}" }\n`;
      const a = await startNode("a", url, withVic, { resolver: noResolver });
      try {
        expect(await schemaVersion(pool)).toBe(STORE_SCHEMA_VERSION);
        expect(STORE_SCHEMA_VERSION).toBeGreaterThanOrEqual(2);
        // The store's policy is in force, not the file's: nothing was seeded over it.
        expect(a.managed.control.cfg.agents.map((x) => [x.id, x.fleet, x.allow, x.wireguard])).toEqual([
          ["veteran", "acme", ["old.test"], undefined],
        ]);
        // The v1 store had no operators: the first node brought its file's, once.
        expect(a.managed.control.cfg.operators.map((o) => o.name)).toEqual(["vic"]);
        expect(a.warnings.join("\n")).toContain("the store had no operators yet: added vic");
        expect((await as(a, VIC, "GET", "/api/status")).status).toBe(200);
        expect((await a.api("GET", "/api/agents")).json.agents[0].node).toBe("old");
        // Removed, vic stays removed through a restart: the file seeds the store only once.
        expect((await a.api("DELETE", "/api/operators", { name: "vic" })).status).toBe(200);
        await a.restart();
        expect(a.managed.control.cfg.operators).toEqual([]);
        expect((await as(a, VIC, "GET", "/api/status")).status).toBe(401);
      } finally {
        await a.close();
      }
      const err = await migrate(pool, url, 1).then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe("CG_STORE_SCHEMA_NEWER");
      expect(err?.message).toContain(`schema version ${STORE_SCHEMA_VERSION}; this clawguard knows up to 1`);
    } finally {
      await pool.end();
    }
  });
});
