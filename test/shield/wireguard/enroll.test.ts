import { execFile } from "node:child_process";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { renderShieldConfigSkeleton } from "../../../src/render/shield-unit.js";
import { parseShieldConfig } from "../../../src/shield/config.js";
import { enrollAgent, revokeAgent } from "../../../src/shield/wireguard/enroll.js";
import { decodeJoinCode } from "../../../src/shield/wireguard/join-code.js";
import { caDirOf, SshCa } from "../../../src/shield/ssh/ca.js";
import { generateKeyPair, publicKeyOf } from "../../../src/shield/wireguard/keys.js";
import { tempDir } from "../../harden/tree.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/clawguard.js");
const NOW = 1_800_000_000_000;
const DAY = 86_400_000;

/** A shield as `shield install --wireguard` leaves it, in a temp dir: skeleton, key, log beside. */
function shieldDir(addresses = ["10.77.0.1/16", "fd77:77::1/64"]): {
  dir: string;
  file: string;
  shieldKey: string;
} {
  const dir = tempDir("enroll");
  const keyFile = path.join(dir, "wireguard.key");
  const pair = generateKeyPair();
  writeFileSync(keyFile, pair.privateKey + "\n", { mode: 0o600 });
  const text = renderShieldConfigSkeleton({
    configDir: dir,
    wireguard: {
      iface: "cgtest9",
      listenPort: 51820,
      addresses,
      privateKeyFile: keyFile,
      endpoint: "203.0.113.5:51820",
    },
  }).replace(/path: \/var\/lib\/clawguard-shield\/shield.db/, "path: shield.db");
  const file = path.join(dir, "shield.yaml");
  writeFileSync(file, text, { mode: 0o600 });
  return { dir, file, shieldKey: pair.publicKey };
}

const enroll = (file: string, id: string, more: Partial<Parameters<typeof enrollAgent>[0]> = {}) =>
  enrollAgent({ configFile: file, id, expiresInMs: DAY, now: () => NOW, live: false, ...more });

describe("shield enroll", () => {
  it("gives the next free addresses, keeps the file's comments, and prints a code for exactly that", async () => {
    const s = shieldDir();
    const before = readFileSync(s.file, "utf8");
    const a = await enroll(s.file, "scout");
    const b = await enroll(s.file, "mate");
    expect(a.addresses).toEqual(["10.77.0.2/32", "fd77:77::2/128"]);
    expect(b.addresses).toEqual(["10.77.0.3/32", "fd77:77::3/128"]);
    const after = readFileSync(s.file, "utf8");
    // Every comment line of the operator's file is still there, in order.
    const comments = (t: string) => t.split("\n").filter((l) => l.trim().startsWith("#"));
    expect(comments(after)).toEqual(comments(before));
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    const cfg = parseShieldConfig(after, s.file);
    expect(cfg.agents.map((x) => [x.id, x.sources, x.wireguard?.publicKey])).toEqual([
      ["scout", a.addresses, a.publicKey],
      ["mate", b.addresses, b.publicKey],
    ]);
    const code = decodeJoinCode(a.join, NOW / 1000);
    expect(code).toMatchObject({
      agent: "scout",
      endpoint: { host: "203.0.113.5", port: 51820 },
      shieldPublicKey: s.shieldKey,
      addresses: a.addresses,
      shieldAddresses: ["10.77.0.1/32", "fd77:77::1/128"],
      proxy: { host: "10.77.0.1", port: 3128 },
      expires: NOW / 1000 + DAY / 1000,
    });
    expect(publicKeyOf(code.privateKey!)).toBe(a.publicKey);
    expect(code.presharedKey).toBeUndefined();
  });

  it("puts the fleet's SSH CA and where its KRL is into the code once the shield has a CA", async () => {
    const s = shieldDir();
    expect(decodeJoinCode((await enroll(s.file, "early")).join, NOW / 1000).sshCa).toBeUndefined();
    const { publicKey } = await new SshCa(caDirOf(s.file)).init();
    const code = decodeJoinCode((await enroll(s.file, "scout")).join, NOW / 1000);
    expect(code.sshCa).toBe(publicKey);
    expect(code.krl).toBe("http://10.77.0.1:3129/ssh/krl");
  });

  it("with --public-key carries no private key, and for an enrolled agent rotates its key and keeps its addresses", async () => {
    const s = shieldDir();
    const own = generateKeyPair();
    const a = await enroll(s.file, "scout", { publicKey: own.publicKey, fleet: undefined });
    expect(decodeJoinCode(a.join, NOW / 1000).privateKey).toBeUndefined();
    const next = generateKeyPair();
    const r = await enroll(s.file, "scout", { publicKey: next.publicKey });
    expect(r).toMatchObject({ rotated: true, addresses: a.addresses, publicKey: next.publicKey });
    expect(parseShieldConfig(readFileSync(s.file, "utf8"), s.file).agents).toHaveLength(1);
    expect(parseShieldConfig(readFileSync(s.file, "utf8"), s.file).agents[0]?.wireguard?.publicKey).toBe(
      next.publicKey,
    );
    await expect(enroll(s.file, "other", { publicKey: next.publicKey })).rejects.toThrow(
      /agent "scout" already has this public key/,
    );
    await expect(enroll(s.file, "other", { publicKey: "abc" })).rejects.toThrow(
      /--public-key: "abc" is not a WireGuard key/,
    );
  });

  it("refuses an enrolled id without --public-key, and a full range naming it, changing nothing", async () => {
    const s = shieldDir(["10.77.0.1/30"]);
    await enroll(s.file, "scout");
    const before = readFileSync(s.file, "utf8");
    await expect(enroll(s.file, "scout")).rejects.toThrow(
      /agent "scout" is already enrolled: to give it a new key, make one on the agent \(clawguard lockdown keygen\) and pass it with --public-key/,
    );
    await expect(enroll(s.file, "mate")).rejects.toThrow(
      "no free address left in 10.77.0.0/30 (wireguard.address[0]): widen the range or revoke an agent",
    );
    expect(readFileSync(s.file, "utf8")).toBe(before);
    const t = shieldDir();
    const untouched = readFileSync(t.file, "utf8");
    await expect(enroll(t.file, "mate", { fleet: "nowhere" })).rejects.toThrow(
      /agents\[0\].fleet: fleet "nowhere" is not defined/,
    );
    expect(readFileSync(t.file, "utf8")).toBe(untouched);
  });

  it("keeps a preshared key in a root-only file the code carries, which revoke removes", async () => {
    const s = shieldDir();
    const a = await enroll(s.file, "scout", { presharedKey: true });
    const cfg = parseShieldConfig(readFileSync(s.file, "utf8"), s.file);
    const pskFile = cfg.agents[0]!.wireguard!.presharedKeyFile!;
    expect(pskFile).toBe(path.join(s.dir, "wireguard-psk", "scout.psk"));
    expect(statSync(pskFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(pskFile, "utf8").trim()).toBe(decodeJoinCode(a.join, NOW / 1000).presharedKey);
    await revokeAgent({ configFile: s.file, id: "scout", live: false });
    expect(existsSync(pskFile)).toBe(false);
  });

  it("needs a tunnel to enrol on: the section, the proxy on it, and a key only root can read", async () => {
    const s = shieldDir();
    const text = readFileSync(s.file, "utf8");
    writeFileSync(s.file, text.replace("listen: 10.77.0.1:3128", "listen: 127.0.0.1:3128"));
    await expect(enroll(s.file, "scout")).rejects.toThrow(
      /listen \(127.0.0.1\) is not one of the shield's WireGuard addresses/,
    );
    writeFileSync(s.file, text.replace(/\nwireguard:\n( {2}.*\n)*/, "\n"));
    await expect(enroll(s.file, "scout")).rejects.toThrow(
      /has no wireguard section: set up the interface first/,
    );
    writeFileSync(s.file, text);
    chmodSync(path.join(s.dir, "wireguard.key"), 0o644);
    await expect(enroll(s.file, "scout")).rejects.toThrow(
      /readable by group or others \(mode 644\); run chmod 600/,
    );
    expect(readFileSync(s.file, "utf8")).toBe(text);
  });
});

describe("shield revoke", () => {
  it("takes the agent out of shield.yaml and nothing else", async () => {
    const s = shieldDir();
    await enroll(s.file, "scout");
    const before = readFileSync(s.file, "utf8");
    await enroll(s.file, "mate");
    const r = await revokeAgent({ configFile: s.file, id: "mate", live: false });
    expect(r).toMatchObject({ agent: "mate", addresses: ["10.77.0.3/32", "fd77:77::3/128"] });
    expect(readFileSync(s.file, "utf8")).toBe(before);
    await expect(revokeAgent({ configFile: s.file, id: "mate", live: false })).rejects.toThrow(
      /no agent "mate" in/,
    );
    // The freed addresses are handed out again.
    expect((await enroll(s.file, "third")).addresses[0]).toBe("10.77.0.3/32");
  });
});

describe("enroll and revoke on the command line", () => {
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [BIN, "shield", ...args], (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      ),
    );

  it("prints the documented JSON, says when the interface is not here, and exits 2 on a refusal", async () => {
    const s = shieldDir();
    const r = await run(["enroll", "scout", "--config", s.file, "--json", "--expires", "2h"]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      schema: "clawguard.shield-enroll/v1",
      agent: "scout",
      addresses: ["10.77.0.2/32", "fd77:77::2/128"],
      live: { applied: false },
    });
    expect(decodeJoinCode(j.join, Date.now() / 1000).agent).toBe("scout");
    const again = await run(["enroll", "scout", "--config", s.file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already enrolled/);
    const text = await run(["enroll", "mate", "--config", s.file, "--endpoint", "[2001:db8::5]:443"]);
    expect(text.stdout.split("\n")[3]).toMatch(/^[A-Za-z0-9_-]{200,}$/);
    expect(decodeJoinCode(text.stdout.split("\n")[3]!, Date.now() / 1000).endpoint).toEqual({
      host: "2001:db8::5",
      port: 443,
    });
    expect((await run(["enroll", "x", "--config", s.file, "--expires", "40d"])).stderr).toMatch(
      /--expires: "40d" is not a duration from 1m to 30d/,
    );
    const gone = await run(["revoke", "scout", "--config", s.file, "--json"]);
    expect(JSON.parse(gone.stdout)).toMatchObject({ schema: "clawguard.shield-revoke/v1", agent: "scout" });
  }, 60_000);
});
