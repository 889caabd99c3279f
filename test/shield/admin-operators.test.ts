/**
 * `clawguard shield operators`: an admin adds and removes operators through the API; the token
 * is shown once and works at once, a removed one stops working, the last admin stays; the CLI
 * finds an operator's token without the shield's own files.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";

let s: AdminShield;
let home: string;
const env = { ...process.env };

beforeAll(async () => {
  s = await startAdminShield("# operators below\nfleets:\n  acme: {}\nagents: []\n");
  home = mkdtempSync(path.join(tmpdir(), "clawguard-operator-home-"));
});

afterAll(async () => {
  await s?.close();
  rmSync(home, { recursive: true, force: true });
});

afterEach(() => {
  process.env = { ...env };
});

const asAdmin = (...args: string[]) =>
  cli("shield", "operators", ...args, "--admin", s.admin, "--token-file", path.join(s.dir, "admin.token"));

describe("operators through the API and the CLI", () => {
  it("adds one: the token is printed once, works at once, and only its hash is in shield.yaml", async () => {
    const r = await asAdmin("add", "bob", "--role", "operator", "--fleet", "acme", "--json");
    expect(r.code, r.err).toBe(0);
    const { token } = JSON.parse(r.out) as { token: string };
    expect(token.length).toBeGreaterThan(20);
    const file = readFileSync(s.file, "utf8");
    expect(file).not.toContain(token);
    expect(file).toMatch(/# operators below/);
    expect(file).toMatch(
      /operators:\n {2}- name: bob\n {4}role: operator\n {4}fleets: \[ acme \]\n {4}token_sha256: [0-9a-f]{64}\n/,
    );
    const status = await s.api("GET", "/api/status", undefined, token);
    expect(status.status).toBe(200);
    expect(status.json.operator).toEqual({ name: "bob", role: "operator", fleets: ["acme"] });
    const list = await asAdmin("list");
    expect(list.out).toMatch(/^bob +operator +acme +operators$/m);
    expect(list.out).toMatch(/^admin +admin +all +admin.token_file$/m);
  });

  it("finds the token in CLAWGUARD_SHIELD_TOKEN or in the operator's own file, never in a file others read", async () => {
    const r = await asAdmin("add", "carol", "--role", "viewer", "--json");
    const { token } = JSON.parse(r.out) as { token: string };
    process.env.CLAWGUARD_SHIELD_TOKEN = token;
    const viaEnv = await cli("shield", "status", "--admin", s.admin, "--json");
    expect(viaEnv.code, viaEnv.err).toBe(0);
    expect(JSON.parse(viaEnv.out).operator.name).toBe("carol");
    delete process.env.CLAWGUARD_SHIELD_TOKEN;
    process.env.XDG_CONFIG_HOME = home;
    mkdirSync(path.join(home, "clawguard"), { recursive: true });
    const mine = path.join(home, "clawguard", "shield-token");
    writeFileSync(mine, token + "\n", { mode: 0o600 });
    const viaFile = await cli("shield", "status", "--admin", s.admin, "--json");
    expect(JSON.parse(viaFile.out).operator.name).toBe("carol");
    chmodSync(mine, 0o644);
    const loose = await cli("shield", "status", "--admin", s.admin);
    expect(loose.code).toBe(2);
    expect(loose.err).toMatch(/others can read it \(mode 644\)/);
    // A viewer cannot manage operators.
    chmodSync(mine, 0o600);
    const denied = await cli("shield", "operators", "add", "mallory", "--role", "admin", "--admin", s.admin);
    expect(denied.code).toBe(2);
    expect(denied.err).toMatch(/HTTP 403.*carol is a viewer/);
  });

  it("removes one: its token stops working at once; the last admin cannot be removed", async () => {
    const r = await asAdmin("add", "dave", "--role", "admin", "--json");
    const { token } = JSON.parse(r.out) as { token: string };
    expect((await s.api("GET", "/api/operators", undefined, token)).status).toBe(200);
    expect((await asAdmin("remove", "dave")).code).toBe(0);
    expect((await s.api("GET", "/api/operators", undefined, token)).status).toBe(401);
    expect(readFileSync(s.file, "utf8")).not.toMatch(/dave/);
    const last = await asAdmin("remove", "admin");
    expect(last.code).toBe(2);
    expect(last.err).toMatch(/last admin|goes with the file/);
  });

  it("refuses bad input without changing the file", async () => {
    const before = readFileSync(s.file, "utf8");
    expect((await asAdmin("add", "bob", "--role", "viewer")).err).toMatch(/exists already/);
    expect((await asAdmin("add", "eve", "--role", "viewer", "--fleet", "nowhere")).err).toMatch(
      /fleet "nowhere" is not defined/,
    );
    expect((await asAdmin("add", "eve", "--role", "root")).err).toMatch(
      /--role must be one of viewer, operator, admin/,
    );
    expect(readFileSync(s.file, "utf8")).toBe(before);
  });
});
