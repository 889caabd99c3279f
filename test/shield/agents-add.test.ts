import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderShieldConfigSkeleton } from "../../src/render/shield-unit.js";
import { parseShieldConfig } from "../../src/shield/config.js";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";
import { curl, Upstream } from "./proxy-harness.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const tokenOf = (out: string) => /^token: (\S+)$/m.exec(out)?.[1] ?? "";

let web: Upstream;
let s: AdminShield;
beforeAll(async () => {
  web = await new Upstream("127.0.0.3").start();
  s = await startAdminShield(
    "tiers:\n  crew: { allow: [127.0.0.3/32] }\nfleets:\n  acme: {}\nagents:\n  - { id: scout, tier: crew, sources: [192.0.2.1/32] } # the first\n",
    { watch: false },
  );
});
afterAll(async () => {
  await s?.close();
  await web?.stop();
});

describe("clawguard shield agents add", () => {
  it("prints a new token once, stores its sha256, and the shield lets the agent in after a reload", async () => {
    const before = readFileSync(s.file, "utf8");
    const r = await cli(
      "shield",
      "agents",
      "add",
      "rover",
      "--fleet",
      "acme",
      "--tier",
      "crew",
      "--config",
      s.file,
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const token = tokenOf(r.out);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.out).toContain(`added agent rover (fleet acme, tier crew) to ${s.file}`);
    const after = readFileSync(s.file, "utf8");
    expect(after).not.toContain(token);
    // One line more, in the style of the entry above it; the rest as it was.
    expect(after).toBe(
      `${before}  - { id: rover, fleet: acme, tier: crew, token_sha256: ${sha256(token)} }\n`,
    );

    const through = (pass: string) =>
      curl(["-x", s.proxyUrl, "--proxy-user", `rover:${pass}`, `http://127.0.0.3:${web.port}/`]);
    expect((await through(token)).status).toBe(407);
    expect((await s.api("POST", "/api/reload")).status).toBe(200);
    expect((await through(token)).status).toBe(200);
    expect((await through(token.slice(0, -1))).status).toBe(407);
    const agents = (await s.api("GET", "/api/agents")).json.agents as Array<{
      id: string;
      fleet: string;
      tier: string;
    }>;
    expect(agents.find((a) => a.id === "rover")).toMatchObject({ fleet: "acme", tier: "crew" });
  });

  it("gives each agent its own token", async () => {
    const a = tokenOf((await cli("shield", "agents", "add", "a1", "--config", s.file)).out);
    const b = tokenOf((await cli("shield", "agents", "add", "a2", "--config", s.file)).out);
    expect(a).not.toBe(b);
    expect(readFileSync(s.file, "utf8")).toContain(sha256(b));
  });

  it("writes nothing for an id already there, an unknown tier or fleet, or an id the shield refuses", async () => {
    const before = readFileSync(s.file, "utf8");
    for (const [args, why] of [
      [["scout"], /agent "scout" is already in the file/],
      [["x1", "--tier", "nope"], /tier "nope" is not defined under tiers/],
      [["x2", "--fleet", "nope"], /fleet "nope" is not defined under fleets/],
      [["bad id"], /agent id "bad id" must match/],
    ] as const) {
      const r = await cli("shield", "agents", "add", ...args, "--config", s.file);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(why);
      expect(r.out).toBe("");
    }
    expect(readFileSync(s.file, "utf8")).toBe(before);
  });
});

describe("the first agent of the installed skeleton", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "clawguard-agents-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("turns agents: [] into a list of one and keeps the commented example below it", async () => {
    const file = path.join(dir, "shield.yaml");
    const skeleton = renderShieldConfigSkeleton({ configDir: dir });
    writeFileSync(file, skeleton);
    const r = await cli("shield", "agents", "add", "scout", "--config", file, "--json");
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { schema: string; token: string; tokenSha256: string };
    expect(j.schema).toBe("clawguard.shield-agent-add/v1");
    expect(j.tokenSha256).toBe(sha256(j.token));
    const text = readFileSync(file, "utf8");
    expect(text).toBe(
      skeleton.replace("agents: []\n", `agents:\n  - { id: scout, token_sha256: ${j.tokenSha256} }\n`),
    );
    expect(parseShieldConfig(text, file).agents).toEqual([
      expect.objectContaining({ id: "scout", tokenSha256: j.tokenSha256 }),
    ]);
  });
});
