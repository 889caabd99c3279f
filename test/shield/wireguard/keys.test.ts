import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  generateKeyPair,
  generatePresharedKey,
  isWireguardKey,
  publicKeyOf,
  wireguardKeyProblem,
} from "../../../src/shield/wireguard/keys.js";
import { haveTool } from "../../render/tool.js";

describe("WireGuard keys", () => {
  it("makes clamped key pairs whose public half is the private half's", () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    expect(a.privateKey).not.toBe(b.privateKey);
    for (const k of [a.privateKey, a.publicKey, generatePresharedKey()]) expect(isWireguardKey(k)).toBe(true);
    const raw = Buffer.from(a.privateKey, "base64");
    expect(raw[0]! & 7).toBe(0);
    expect(raw[31]! & 0xc0).toBe(0x40);
    expect(publicKeyOf(a.privateKey)).toBe(a.publicKey);
  });

  it("refuses what is not a key, saying what a key looks like", () => {
    const k = generateKeyPair().publicKey;
    for (const bad of [
      "",
      k.slice(1),
      k + "A",
      k.replace(/=$/, ""),
      k.replace(/^./, "!"),
      "A".repeat(42) + "B=",
    ])
      expect(wireguardKeyProblem(bad), bad).toMatch(/not a WireGuard key \(44 base64 characters/);
    expect(wireguardKeyProblem(k)).toBeNull();
    expect(() => publicKeyOf("nope")).toThrow(/not a WireGuard private key/);
  });

  it.runIf(haveTool("wg"))("agrees with wg genkey and wg pubkey both ways", () => {
    const fromWg = execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim();
    expect(publicKeyOf(fromWg)).toBe(
      execFileSync("wg", ["pubkey"], { input: fromWg, encoding: "utf8" }).trim(),
    );
    const ours = generateKeyPair();
    expect(execFileSync("wg", ["pubkey"], { input: ours.privateKey, encoding: "utf8" }).trim()).toBe(
      ours.publicKey,
    );
  });
});
