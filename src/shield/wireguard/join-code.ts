/**
 * The join code `shield enroll` prints and `lockdown --join` reads: everything an agent needs to
 * bring up its tunnel to the shield, in one line a person can paste. It is base64url of a magic
 * tag, a version, the fields as JSON and the first 8 bytes of their sha256. The checksum catches
 * a code cut short or mistyped; it is no signature (whoever can change the code can recompute
 * it), which is why the agent trusts a shield only once the WireGuard handshake with the key in
 * the code succeeds. Pure.
 */
import { createHash } from "node:crypto";
import { parseCidr, formatCidr } from "../../net/addresses.js";
import { HostPortError, parseHostPort, type HostPort } from "../../net/hostport.js";
import { isWireguardKey } from "./keys.js";
import { ClawguardError } from "../../errors.js";
import { KRL_URL } from "../../render/krl-fetch-unit.js";
import { CA_PUBLIC_KEY } from "../../render/sshd-ca.js";

const MAGIC = Buffer.from("cg", "ascii");
const VERSION = 1;
const CHECKSUM_BYTES = 8;

export interface JoinCode {
  agent: string;
  /** Where the agent sends its WireGuard packets: the shield's public host and UDP port. */
  endpoint: HostPort;
  shieldPublicKey: string;
  /** The agent's own tunnel addresses, /32 and /128. */
  addresses: string[];
  /** The shield's tunnel addresses, /32 and /128: the agent's AllowedIPs. */
  shieldAddresses: string[];
  /** The proxy on the shield's tunnel address. */
  proxy: HostPort;
  presharedKey?: string;
  /** Absent when the agent made its own key pair (enroll --public-key). */
  privateKey?: string;
  /** Seconds since the epoch after which the code is refused. */
  expires: number;
  /** The fleet's SSH user CA (its public key line), when the shield has one. */
  sshCa?: string;
  /** Where the shield serves its KRL, on its tunnel address. */
  krl?: string;
}

export type JoinCodeProblem = "malformed" | "damaged" | "version" | "expired";

export class JoinCodeError extends ClawguardError {
  constructor(
    readonly problem: JoinCodeProblem,
    message: string,
  ) {
    super(problem === "expired" ? "CG_JOIN_CODE_EXPIRED" : "CG_JOIN_CODE_INVALID", message);
  }
}

interface Wire {
  agent: string;
  endpoint: string;
  shieldKey: string;
  addresses: string[];
  shieldAddresses: string[];
  proxy: string;
  psk?: string;
  privateKey?: string;
  expires: number;
  sshCa?: string;
  krl?: string;
}

function checksum(body: Buffer): Buffer {
  return createHash("sha256").update(body).digest().subarray(0, CHECKSUM_BYTES);
}

function authority(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

export function encodeJoinCode(code: JoinCode): string {
  const wire: Wire = {
    agent: code.agent,
    endpoint: authority(code.endpoint),
    shieldKey: code.shieldPublicKey,
    addresses: code.addresses,
    shieldAddresses: code.shieldAddresses,
    proxy: authority(code.proxy),
    ...(code.presharedKey !== undefined ? { psk: code.presharedKey } : {}),
    ...(code.privateKey !== undefined ? { privateKey: code.privateKey } : {}),
    expires: code.expires,
    ...(code.sshCa !== undefined ? { sshCa: code.sshCa } : {}),
    ...(code.krl !== undefined ? { krl: code.krl } : {}),
  };
  // The fields themselves are checked on the way in, so no code this prints is refused later.
  checkFields(wire);
  const body = Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(JSON.stringify(wire), "utf8")]);
  return Buffer.concat([body, checksum(body)]).toString("base64url");
}

/**
 * Read a join code, or throw JoinCodeError saying what is wrong with it: not a join code at all,
 * cut short or altered, made by a newer clawguard, or expired at `nowSeconds`.
 */
export function decodeJoinCode(text: string, nowSeconds: number): JoinCode {
  const trimmed = text.trim();
  if (trimmed === "" || !/^[A-Za-z0-9_-]+$/.test(trimmed))
    throw new JoinCodeError(
      "malformed",
      "this is not a join code: a join code is one line of letters, digits, - and _ (as shield enroll prints it)",
    );
  const bytes = Buffer.from(trimmed, "base64url");
  if (bytes.length < MAGIC.length + 1 + CHECKSUM_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC))
    throw new JoinCodeError(
      "malformed",
      "this is not a clawguard join code (copy the whole line shield enroll printed)",
    );
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  if (!checksum(body).equals(bytes.subarray(bytes.length - CHECKSUM_BYTES)))
    throw new JoinCodeError(
      "damaged",
      `the join code is damaged: its checksum does not match (${trimmed.length} characters; was it cut short or changed?). Copy the whole line again, or enroll the agent again`,
    );
  const version = body[MAGIC.length];
  if (version !== VERSION)
    throw new JoinCodeError(
      "version",
      `the join code is version ${String(version)}; this clawguard reads version ${VERSION}: use the clawguard release that made it`,
    );
  let wire: unknown;
  try {
    wire = JSON.parse(body.subarray(MAGIC.length + 1).toString("utf8"));
  } catch {
    throw new JoinCodeError("damaged", "the join code is damaged: its fields do not parse");
  }
  const w = checkFields(wire);
  if (w.expires <= nowSeconds)
    throw new JoinCodeError(
      "expired",
      `the join code expired at ${new Date(w.expires * 1000).toISOString()}: ask for a new one (shield enroll ${w.agent} --public-key ... or revoke and enroll again)`,
    );
  return {
    agent: w.agent,
    endpoint: parseHostPort(w.endpoint),
    shieldPublicKey: w.shieldKey,
    addresses: w.addresses,
    shieldAddresses: w.shieldAddresses,
    proxy: parseHostPort(w.proxy),
    ...(w.psk !== undefined ? { presharedKey: w.psk } : {}),
    ...(w.privateKey !== undefined ? { privateKey: w.privateKey } : {}),
    expires: w.expires,
    ...(w.sshCa !== undefined ? { sshCa: w.sshCa } : {}),
    ...(w.krl !== undefined ? { krl: w.krl } : {}),
  };
}

function hostList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 2) throw bad(`${what}: not one or two addresses`);
  return v.map((x) => {
    const c = typeof x === "string" ? parseCidr(x) : "not text";
    if (typeof c === "string" || c.prefix !== (c.family === 4 ? 32 : 128))
      throw bad(`${what}: ${String(x)} is not one address (/32 or /128)`);
    return formatCidr(c);
  });
}

function bad(why: string): JoinCodeError {
  return new JoinCodeError("damaged", `the join code is damaged: ${why}`);
}

function checkFields(v: unknown): Wire {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw bad("no fields");
  const o = v as Record<string, unknown>;
  const str = (k: string) => {
    if (typeof o[k] !== "string" || o[k] === "") throw bad(`${k} is missing`);
    return o[k];
  };
  const key = (k: string, optional: boolean) => {
    if (optional && o[k] === undefined) return undefined;
    const s = str(k);
    if (!isWireguardKey(s)) throw bad(`${k} is not a WireGuard key`);
    return s;
  };
  const hostPort = (k: string) => {
    try {
      return authority(parseHostPort(str(k)));
    } catch (e) {
      if (e instanceof HostPortError) throw bad(`${k}: ${e.reason}`);
      throw e;
    }
  };
  const agent = str("agent");
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(agent)) throw bad("agent is not an agent id");
  const expires = o.expires;
  if (typeof expires !== "number" || !Number.isSafeInteger(expires) || expires <= 0)
    throw bad("expires is not a time");
  const shieldAddresses = hostList(o.shieldAddresses, "shieldAddresses");
  const proxy = hostPort("proxy");
  const proxyHost = parseHostPort(proxy).host;
  if (!shieldAddresses.some((a) => a.startsWith(`${proxyHost}/`)))
    throw bad(`the proxy ${proxy} is not on the shield's tunnel addresses`);
  const psk = key("psk", true);
  const privateKey = key("privateKey", true);
  // The CA the agent's sshd will trust, and a KRL on the shield's own tunnel address only.
  const sshCa = o.sshCa === undefined ? undefined : str("sshCa");
  if (sshCa !== undefined && !CA_PUBLIC_KEY.test(sshCa)) throw bad("sshCa is not one SSH public key");
  const krl = o.krl === undefined ? undefined : str("krl");
  if (krl !== undefined) {
    const host = KRL_URL.test(krl) ? new URL(krl).hostname.replace(/^\[|\]$/g, "") : null;
    if (host === null || !shieldAddresses.some((a) => a.startsWith(`${host}/`)))
      throw bad(`krl ${krl} is not a URL on the shield's tunnel addresses`);
  }
  return {
    agent,
    endpoint: hostPort("endpoint"),
    shieldKey: key("shieldKey", false) as string,
    addresses: hostList(o.addresses, "addresses"),
    shieldAddresses,
    proxy,
    ...(psk !== undefined ? { psk } : {}),
    ...(privateKey !== undefined ? { privateKey } : {}),
    expires,
    ...(sshCa !== undefined ? { sshCa } : {}),
    ...(krl !== undefined ? { krl } : {}),
  };
}
