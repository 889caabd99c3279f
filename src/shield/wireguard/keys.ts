/**
 * WireGuard keys as `wg` writes them: 32 bytes in standard base64 (44 characters). The maths is
 * OpenSSL's X25519 through node:crypto, the same curve `wg genkey` and `wg pubkey` use, so a key
 * made here works with `wg` and the other way round.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";

const KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
// The PKCS#8 wrapping of a raw X25519 private key (RFC 8410), which is how OpenSSL takes one in.
const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

/** True for a 32-byte key in the base64 form `wg` prints. */
export function isWireguardKey(text: string): boolean {
  return KEY.test(text);
}

/** Why `text` is not a WireGuard key, or null when it is one. */
export function wireguardKeyProblem(text: string): string | null {
  if (isWireguardKey(text)) return null;
  return `"${text.length > 60 ? text.slice(0, 57) + "..." : text}" is not a WireGuard key (44 base64 characters ending in "=", as wg pubkey prints)`;
}

/** A new key pair; the private key is clamped as `wg genkey` does. */
export function generateKeyPair(): KeyPair {
  const d = Buffer.from(
    generateKeyPairSync("x25519").privateKey.export({ format: "jwk" }).d as string,
    "base64url",
  );
  d[0]! &= 248;
  d[31]! &= 127;
  d[31]! |= 64;
  const privateKey = d.toString("base64");
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/** The public half of a private key, as `wg pubkey` prints it. */
export function publicKeyOf(privateKey: string): string {
  if (!isWireguardKey(privateKey)) throw new TypeError("not a WireGuard private key");
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519, Buffer.from(privateKey, "base64")]),
    format: "der",
    type: "pkcs8",
  });
  const x = createPublicKey(key).export({ format: "jwk" }).x as string;
  return Buffer.from(x, "base64url").toString("base64");
}

/** A preshared key: 32 random bytes, as `wg genpsk` prints them. */
export function generatePresharedKey(): string {
  return randomBytes(32).toString("base64");
}
