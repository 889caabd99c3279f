/**
 * SSH access grants on the shield: `shield ca init` makes a root-only CA beside shield.yaml;
 * `shield grant` signs a key for the agent's principal only, for a bounded while, with a unique
 * serial and a key id naming the operator, and logs it; bad input signs and logs nothing;
 * `revoke-grant` puts the serial in the KRL (checked with ssh-keygen -Q) and logs it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminShield, type AdminShield } from "./admin-harness.js";
import { cli } from "./cli-harness.js";
import { parseShieldConfig } from "../../src/shield/config.js";

const sha256 = (t: string) => createHash("sha256").update(t).digest("hex");
const ALICE = "alice-token-0123456789abcdef0123456789";
const VERA = "vera-token-0123456789abcdef0123456789a";

let s: AdminShield;
let keys: string;
let pub: string;

beforeAll(async () => {
  s = await startAdminShield(`fleets:
  acme: {}
  umbrella: {}
agents:
  - { id: a1, fleet: acme, sources: [10.9.0.1] }
  - { id: u1, fleet: umbrella, sources: [10.9.0.2] }
operators:
  - { name: alice, role: operator, fleets: [acme], token_sha256: "${sha256(ALICE)}" }
  - { name: vera, role: viewer, token_sha256: "${sha256(VERA)}" }
`);
  keys = mkdtempSync(path.join(tmpdir(), "clawguard-grant-keys-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(keys, "id")]);
  pub = readFileSync(path.join(keys, "id.pub"), "utf8");
});

afterAll(async () => {
  await s?.close();
  rmSync(keys, { recursive: true, force: true });
});

const ca = () => path.join(s.dir, "ssh-ca");
const grantsOnDisk = () => JSON.parse(readFileSync(path.join(ca(), "grants.json"), "utf8")) as unknown[];
async function records(operator: string) {
  await s.managed.log.flush();
  return s.managed.log.query({ operator });
}

describe("SSH access grants", () => {
  it("refuses to sign before there is a CA", async () => {
    const r = await s.api("POST", "/api/grants", { agent: "a1", key: pub, for: "1h" }, ALICE);
    expect(r.status).toBe(409);
    expect(r.json.error).toMatch(/shield ca init/);
  });

  it("makes the CA once, its key readable by its owner only", async () => {
    const r = await cli("shield", "ca", "init", "--config", s.file, "--json");
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).publicKey).toMatch(/^ssh-ed25519 /);
    expect(statSync(path.join(ca(), "ca")).mode & 0o777).toBe(0o600);
    expect(statSync(ca()).mode & 0o777).toBe(0o700);
    const again = await cli("shield", "ca", "init", "--config", s.file);
    expect(again.code).not.toBe(0);
    expect(again.err).toMatch(/CG_SSH_CA_EXISTS|already exists/);
  });

  it("refuses bad input with a clear error, signing and logging nothing", async () => {
    const cases: Array<[Record<string, unknown>, string, number, RegExp]> = [
      [{ agent: "a1", key: "ssh-ed25519 not-base64!", for: "1h" }, ALICE, 400, /not an SSH public key/],
      [
        { agent: "a1", key: readFileSync(path.join(keys, "id"), "utf8"), for: "1h" },
        ALICE,
        400,
        /public key/,
      ],
      [
        { agent: "a1", key: pub, for: "9h" },
        ALICE,
        400,
        /more than the most a grant may last \(480 minutes\)/,
      ],
      [{ agent: "a1", key: pub, for: "soon" }, ALICE, 400, /a duration/],
      [{ agent: "nobody", key: pub, for: "1h" }, ALICE, 404, /unknown agent "nobody"/],
      // Out of scope reads exactly as unknown.
      [{ agent: "u1", key: pub, for: "1h" }, ALICE, 404, /unknown agent "u1"/],
      [{ agent: "a1", key: pub, for: "1h" }, VERA, 403, /needs an operator or an admin/],
      // The user is part of the principal: nothing but an account name is taken.
      [{ agent: "a1", key: pub, for: "1h", as: "deploy,root" }, ALICE, 400, /^as: must be a Linux user name/],
      [{ agent: "a1", key: pub, for: "1h", as: "Root" }, ALICE, 400, /^as: must be a Linux user name/],
    ];
    for (const [body, token, status, error] of cases) {
      const r = await s.api("POST", "/api/grants", body, token);
      expect([r.status, r.json.error], JSON.stringify(body)).toEqual([status, expect.stringMatching(error)]);
    }
    expect(grantsOnDisk()).toEqual([]);
    expect((await records("alice")).filter((r) => r.method === "GRANT")).toEqual([]);
  });

  it("signs for the agent's principal only, for the time asked, and logs it with the operator's name", async () => {
    const tokenFile = path.join(keys, "alice.token");
    writeFileSync(tokenFile, ALICE, { mode: 0o600 });
    const out = path.join(keys, "id-cert.pub");
    const t0 = Date.now();
    const r = await cli(
      "shield",
      "grant",
      "a1",
      "--key",
      path.join(keys, "id.pub"),
      "--for",
      "30m",
      "--no-forwarding",
      "--reason",
      "disk full",
      "--out",
      out,
      "--admin",
      s.admin,
      "--token-file",
      tokenFile,
      "--json",
    );
    expect(r.code, r.err).toBe(0);
    const g = JSON.parse(r.out).grant;
    expect(g).toMatchObject({
      serial: 1,
      agent: "a1",
      principal: "agent-a1",
      operator: "alice",
      noForwarding: true,
    });
    expect(g.validBefore - t0).toBeGreaterThanOrEqual(30 * 60_000 - 1000);
    expect(g.validBefore - t0).toBeLessThan(30 * 60_000 + 5000);
    const shown = execFileSync("ssh-keygen", ["-L", "-f", out], { encoding: "utf8" });
    expect(shown).toMatch(/Key ID: "clawguard grant 1 by alice for agent-a1"/);
    expect(shown).toMatch(/Serial: 1\n/);
    expect(shown).toMatch(/Principals: \n\s+agent-a1\n\s+Critical/);
    expect(shown).not.toMatch(/permit-port-forwarding|permit-agent-forwarding/);
    expect(shown).toMatch(/permit-pty/);

    const second = await s.api("POST", "/api/grants", { agent: "u1", key: pub, for: "10s" });
    expect(second.json.grant.serial).toBe(2);

    const logged = await records("alice");
    expect(logged.map((x) => [x.method, x.agent, x.fleet])).toEqual([["GRANT", "a1", "acme"]]);
    expect(logged[0]!.reason).toMatch(
      /serial 1, agent-a1, key SHA256:\S+, until .*no forwarding; reason: disk full/,
    );

    // Alice sees her fleet's grant only; an admin sees both.
    const mine = await s.api("GET", "/api/grants", undefined, ALICE);
    expect(mine.json.grants.map((x: { serial: number }) => x.serial)).toEqual([1]);
    expect(mine.text).not.toContain("u1");
    const all = await s.api("GET", "/api/grants");
    expect(all.json.grants.map((x: { serial: number; state: string }) => [x.serial, x.state])).toEqual([
      [2, "active"],
      [1, "active"],
    ]);
  });

  it("revokes by serial into the KRL, within scope, and logs it", async () => {
    const out = path.join(keys, "id-cert.pub");
    const krl = path.join(ca(), "krl");
    const before = spawnSync("ssh-keygen", ["-Q", "-f", krl, out], { encoding: "utf8" });
    expect(before.status).toBe(0);
    // Another fleet's grant is unknown to alice, and stays valid.
    const other = await s.api("DELETE", "/api/grants", { serial: 2 }, ALICE);
    expect([other.status, other.json.error]).toEqual([404, "no grant with serial 2"]);
    const r = await s.api("DELETE", "/api/grants", { serial: 1 }, ALICE);
    expect(r.status).toBe(200);
    const after = spawnSync("ssh-keygen", ["-Q", "-f", krl, out], { encoding: "utf8" });
    expect(after.status).toBe(1);
    expect(after.stdout).toMatch(/REVOKED/);
    const logged = await records("alice");
    expect(logged.map((x) => x.method)).toEqual(["GRANT", "UNGRANT"]);
    const list = await s.api("GET", "/api/grants");
    expect(list.json.grants.map((x: { serial: number; state: string }) => [x.serial, x.state])).toEqual([
      [2, "active"],
      [1, "revoked"],
    ]);
  });

  it("signs a grant --as USER for that account's principal, names it in the key id and lists it", async () => {
    const tokenFile = path.join(keys, "alice.token");
    const out = path.join(keys, "as-cert.pub");
    const api = ["--admin", s.admin, "--token-file", tokenFile];
    const r = await cli(
      "shield",
      "grant",
      "a1",
      "--key",
      path.join(keys, "id.pub"),
      "--for",
      "10m",
      "--as",
      "deploy",
      "--out",
      out,
      ...api,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^grant (\d+) for agent-a1:deploy \(as deploy only\) until /);
    const serial = Number(/^grant (\d+)/.exec(r.out)![1]);
    const shown = execFileSync("ssh-keygen", ["-L", "-f", out], { encoding: "utf8" });
    expect(shown).toContain(`Key ID: "clawguard grant ${serial} by alice for agent-a1:deploy as deploy"`);
    expect(shown).toMatch(/Principals: \n\s+agent-a1:deploy\n\s+Critical/);
    const g = grantsOnDisk().find((x) => (x as { serial: number }).serial === serial);
    expect(g).toMatchObject({ principal: "agent-a1:deploy", user: "deploy" });
    const list = await cli("shield", "grants", ...api);
    expect(list.code, list.err).toBe(0);
    const [head, ...rows] = list.out.trim().split("\n");
    expect(head).toMatch(/^SERIAL\s+AGENT\s+AS\s+STATE/);
    expect(rows.find((l) => l.startsWith(`${serial} `))).toMatch(
      new RegExp(`^${serial}\\s+a1\\s+deploy\\s+active`),
    );
    expect(rows.find((l) => l.startsWith("1 "))).toMatch(/^1\s+a1\s+\(default\)\s+revoked/);
    const bad = await cli(
      "shield",
      "grant",
      "a1",
      "--key",
      path.join(keys, "id.pub"),
      "--for",
      "10m",
      "--as",
      "../root",
      ...api,
    );
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/as: must be a Linux user name/);
  });

  it("takes the most a grant may last from ssh_access.max_grant, and refuses a bad one", async () => {
    writeFileSync(s.file, readFileSync(s.file, "utf8") + "ssh_access: { max_grant: 1h }\n");
    await s.managed.reload("test", true);
    const r = await s.api("POST", "/api/grants", { agent: "a1", key: pub, for: "2h" }, ALICE);
    expect([r.status, r.json.error]).toEqual([400, "2h is more than the most a grant may last (60 minutes)"]);
    expect(() =>
      parseShieldConfig(
        "listen: 127.0.0.1:0\nlog: { path: x.db }\nssh_access: { max_grant: 30d }\n",
        "s.yaml",
      ),
    ).toThrow(/ssh_access.max_grant: must be a duration from 1m to 7d/);
  });
});
