/**
 * The shield serves its KRL to enrolled agents on a listener of its own: the current list,
 * byte for byte, to a source that is an agent; a refusal to any other source, to another path
 * and to anything but GET. Each new list's version is above the last one's. Where it listens
 * follows ssh_access.krl_listen, the tunnel's address by default.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseKrlListing } from "../../src/facts/krl.js";
import { DEFAULT_KRL_PORT, parseShieldConfig } from "../../src/shield/config.js";
import { caDirOf, SshCa } from "../../src/shield/ssh/ca.js";
import { KRL_PATH } from "../../src/shield/ssh/krl-server.js";
import { startAdminShield, type AdminShield } from "./admin-harness.js";

let enrolled: AdminShield;
let stranger: AdminShield;
let ca: SshCa;

const listing = (file: string) =>
  parseKrlListing(execFileSync("ssh-keygen", ["-Q", "-l", "-f", file], { encoding: "utf8" }));

beforeAll(async () => {
  const krl = "ssh_access: { krl_listen: 127.0.0.1:0 }\n";
  enrolled = await startAdminShield(`agents:\n  - { id: a1, sources: [127.0.0.1/32] }\n${krl}`);
  stranger = await startAdminShield(`agents:\n  - { id: a2, sources: [10.9.0.2/32] }\n${krl}`);
  ca = new SshCa(caDirOf(enrolled.file));
});

afterAll(async () => {
  await enrolled?.close();
  await stranger?.close();
});

const get = (s: AdminShield, p = KRL_PATH, method = "GET") =>
  fetch(`http://127.0.0.1:${s.managed.krl!.port}${p}`, { method });

describe("the shield's KRL endpoint", () => {
  it("says there is no list before the CA is made", async () => {
    const r = await get(enrolled);
    expect(r.status).toBe(404);
    expect(await r.text()).toMatch(/shield ca init/);
  });

  it("serves the current KRL to an enrolled agent, a newer version after each revocation", async () => {
    await ca.init();
    const first = listing(ca.krlFile)!;
    const key = path.join(path.dirname(ca.keyFile), "op");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    const { grant } = await ca.sign({
      agent: "a1",
      publicKey: readFileSync(`${key}.pub`, "utf8"),
      durationMs: 60_000,
      operator: "alice",
    });
    await ca.revoke(grant.serial, "alice");
    const second = listing(ca.krlFile)!;
    expect(second.serials).toBe(1);
    expect(second.version).toBeGreaterThan(first.version);
    const r = await get(enrolled);
    expect(r.status).toBe(200);
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(Buffer.from(await r.arrayBuffer()).equals(readFileSync(ca.krlFile))).toBe(true);
  });

  it("refuses a source that is no enrolled agent, another path and a write", async () => {
    await new SshCa(caDirOf(stranger.file)).init();
    const r = await get(stranger);
    expect(r.status).toBe(403);
    expect(await r.text()).toMatch(/127\.0\.0\.1 is not an enrolled agent/);
    expect((await get(enrolled, "/ssh/ca")).status).toBe(404);
    expect((await get(enrolled, KRL_PATH, "PUT")).status).toBe(405);
  });
});

describe("ssh_access.krl_listen", () => {
  const base = "listen: 10.77.0.1:3128\nlog: { path: x.db }\n";
  const wg = `wireguard:
  interface: cg0
  listen_port: 51820
  address: [10.77.0.1/16]
  private_key_file: /etc/clawguard/wireguard.key
`;
  it("is the proxy's tunnel address on its own port with WireGuard, and nowhere without", () => {
    expect(parseShieldConfig(base + wg, "s.yaml").sshAccess.krlListen).toEqual({
      host: "10.77.0.1",
      port: DEFAULT_KRL_PORT,
    });
    expect(parseShieldConfig(base + "allow_cleartext: true\n", "s.yaml").sshAccess.krlListen).toBeNull();
    expect(
      parseShieldConfig(base + wg + "ssh_access: { krl_listen: off }\n", "s.yaml").sshAccess.krlListen,
    ).toBeNull();
    expect(() =>
      parseShieldConfig(base + wg + "ssh_access: { krl_listen: shield.example:1 }\n", "s.yaml"),
    ).toThrow(/ssh_access.krl_listen/);
  });
});
