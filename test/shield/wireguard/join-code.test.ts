import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decodeJoinCode,
  encodeJoinCode,
  JoinCodeError,
  type JoinCode,
} from "../../../src/shield/wireguard/join-code.js";
import { generateKeyPair, generatePresharedKey } from "../../../src/shield/wireguard/keys.js";

const NOW = 1_800_000_000;

function sample(over: Partial<JoinCode> = {}): JoinCode {
  return {
    agent: "scout",
    endpoint: { host: "203.0.113.5", port: 51820 },
    shieldPublicKey: generateKeyPair().publicKey,
    addresses: ["10.77.0.2/32", "fd77:77::2/128"],
    shieldAddresses: ["10.77.0.1/32", "fd77:77::1/128"],
    proxy: { host: "10.77.0.1", port: 3128 },
    presharedKey: generatePresharedKey(),
    privateKey: generateKeyPair().privateKey,
    expires: NOW + 3600,
    ...over,
  };
}

function problem(text: string, now = NOW): string {
  try {
    decodeJoinCode(text, now);
  } catch (e) {
    if (e instanceof JoinCodeError) return `${e.problem}: ${e.message}`;
    throw e;
  }
  return "accepted";
}

describe("join codes", () => {
  it("carry endpoint, keys, addresses, proxy and expiry through one base64url line", () => {
    const code = sample();
    const text = encodeJoinCode(code);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeJoinCode(text, NOW)).toEqual(code);
    // Without a private key (the agent made its own) and an IPv6 endpoint, by name or address.
    const own = sample({
      privateKey: undefined,
      presharedKey: undefined,
      endpoint: { host: "2001:db8::5", port: 443 },
    });
    delete own.privateKey;
    delete own.presharedKey;
    expect(decodeJoinCode(encodeJoinCode(own), NOW)).toEqual(own);
    const named = sample({ endpoint: { host: "shield.example.net", port: 51820 } });
    expect(decodeJoinCode(` ${encodeJoinCode(named)}\n`, NOW).endpoint).toEqual(named.endpoint);
  });

  it("are refused when cut short, altered anywhere, or pasted with garbage, naming the damage", () => {
    const text = encodeJoinCode(sample());
    expect(problem(text.slice(0, -1))).toMatch(/^damaged: .*checksum does not match/);
    expect(problem(text.slice(0, text.length / 2))).toMatch(/^damaged: .*cut short or changed/);
    expect(problem(text.slice(0, 6))).toMatch(/^malformed: this is not a clawguard join code/);
    // One character changed at every position: never accepted.
    for (let i = 0; i < text.length; i += 7) {
      const c = text[i] === "A" ? "B" : "A";
      expect(problem(text.slice(0, i) + c + text.slice(i + 1)), `position ${i}`).toMatch(
        /^(damaged|malformed)/,
      );
    }
    expect(problem("hello world")).toMatch(/^malformed: this is not a join code/);
    expect(problem(Buffer.from("xx" + "y".repeat(40)).toString("base64url"))).toMatch(/^malformed/);
  });

  it("are refused once expired, saying when", () => {
    const text = encodeJoinCode(sample({ expires: NOW }));
    expect(problem(text, NOW - 1)).toBe("accepted");
    expect(problem(text, NOW)).toMatch(/^expired: the join code expired at 2027-01-15T08:00:00.000Z/);
  });

  it("are refused from a newer version, and never printed with bad fields", () => {
    const text = encodeJoinCode(sample());
    const bytes = Buffer.from(text, "base64url");
    bytes[2] = 9;
    // The checksum still has to match for the version to be read.
    const body = bytes.subarray(0, bytes.length - 8);
    const fixed = Buffer.concat([body, createHash("sha256").update(body).digest().subarray(0, 8)]);
    expect(problem(fixed.toString("base64url"))).toMatch(/^version: the join code is version 9/);
    expect(() => encodeJoinCode(sample({ addresses: ["10.77.0.0/24"] }))).toThrow(/not one address/);
    expect(() => encodeJoinCode(sample({ shieldPublicKey: "x" }))).toThrow(
      /shieldKey is not a WireGuard key/,
    );
    expect(() => encodeJoinCode(sample({ proxy: { host: "10.9.9.9", port: 3128 } }))).toThrow(
      /not on the shield's tunnel addresses/,
    );
  });
});
