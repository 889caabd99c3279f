/**
 * The fleet's SSH user CA on the shield, on OpenSSH's own tools: `ssh-keygen` makes the CA key,
 * signs each grant (a short-lived certificate for one agent's principal: `agent-<id>`, or
 * `agent-<id>:<user>` for a grant `--as USER`, which only that account's file lists) and
 * writes the key revocation list. Agents' sshd do the authentication; nothing here is in that
 * path. The directory holds `ca` (the private key, 0600, in a 0700 directory), `ca.pub`, `krl`
 * and `grants.json` (every grant ever made, for serials, listing and revocation). Shields sharing
 * a store keep grants and the KRL there instead (store/pg-grants.ts); the key stays here.
 */
import { execFile } from "node:child_process";
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { ClawguardError } from "../../errors.js";
import { parseKrlListing } from "../../facts/krl.js";
import { ACCOUNT_NAME, principalOf } from "../../render/sshd-ca.js";

const run = promisify(execFile);

export class SshCaError extends ClawguardError {}

export interface Grant {
  serial: number;
  agent: string;
  principal: string;
  user: string | null;
  operator: string;
  keyId: string;
  /** SHA256 fingerprint of the granted public key. */
  fingerprint: string;
  validAfter: number;
  validBefore: number;
  noForwarding: boolean;
  reason: string | null;
  revokedAt: number | null;
  revokedBy: string | null;
}

export interface GrantRequest {
  agent: string;
  publicKey: string;
  durationMs: number;
  operator: string;
  user?: string;
  noForwarding?: boolean;
  reason?: string;
}

/** What the admin API asks of grants: this CA's files, or a shared store's rows. */
export interface GrantAuthority {
  /** The CA's public key, as agents trust it (null: there is no CA). */
  caPublicKey(): Promise<string | null>;
  grants(): Promise<Grant[]>;
  sign(req: GrantRequest): Promise<{ grant: Grant; certificate: string }>;
  revoke(serial: number, by: string): Promise<Grant>;
}

/** Where the CA of the shield configured by this file lives: beside it, in `ssh-ca/`. */
export function caDirOf(configFile: string): string {
  return path.join(path.dirname(path.resolve(configFile)), "ssh-ca");
}

function stamp(ms: number): string {
  // ssh-keygen reads a trailing Z as UTC (else it takes the local time zone).
  return new Date(ms)
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function keygen(args: string[], what: string): Promise<string> {
  try {
    const r = await run("ssh-keygen", args, { timeout: 20_000 });
    return r.stdout + r.stderr;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === "ENOENT" ? "ssh-keygen is not installed" : (err.stderr ?? err.message).trim();
    throw new SshCaError("CG_SSH_CA_FAILED", `${what}: ${why}`, {
      hint: "install openssh-client (apt-get install openssh-client)",
    });
  }
}

export class SshCa implements GrantAuthority {
  constructor(readonly dir: string) {}

  get keyFile(): string {
    return path.join(this.dir, "ca");
  }
  get publicKeyFile(): string {
    return path.join(this.dir, "ca.pub");
  }
  get krlFile(): string {
    return path.join(this.dir, "krl");
  }
  private get grantsFile(): string {
    return path.join(this.dir, "grants.json");
  }

  /**
   * Make the CA: refuses to replace one (every agent trusts it). `owner`: the user the shield
   * runs as, who signs with the key and serves the KRL, gets the directory and its files.
   */
  async init(owner?: { uid: number; gid: number }): Promise<{ publicKey: string }> {
    if (await exists(this.keyFile))
      throw new SshCaError(
        "CG_SSH_CA_EXISTS",
        `${this.keyFile} already exists: the fleet's CA is made once`,
        {
          hint: "agents trust this key; to replace it, remove the directory and re-enrol every agent",
        },
      );
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    await keygen(
      ["-q", "-t", "ed25519", "-N", "", "-C", "clawguard fleet SSH user CA", "-f", this.keyFile],
      "cannot make the CA key",
    );
    await chmod(this.keyFile, 0o600);
    await this.writeKrl([]);
    await writeFile(this.grantsFile, "[]\n", { mode: 0o600 });
    if (owner) {
      for (const f of await readdir(this.dir)) await chown(path.join(this.dir, f), owner.uid, owner.gid);
      await chown(this.dir, owner.uid, owner.gid);
    }
    return { publicKey: (await readFile(this.publicKeyFile, "utf8")).trim() };
  }

  /** The CA's private key must be there and readable by its owner only; else nothing is signed. */
  async check(): Promise<void> {
    const st = await stat(this.keyFile).catch(() => null);
    if (!st)
      throw new SshCaError("CG_SSH_CA_MISSING", `no SSH CA at ${this.dir}`, {
        hint: "make it on the shield: clawguard shield ca init",
      });
    if ((st.mode & 0o077) !== 0 || (typeof process.getuid === "function" && st.uid !== process.getuid()))
      throw new SshCaError(
        "CG_SSH_CA_MISSING",
        `${this.keyFile} is readable by others or owned by another user: refusing to sign with it`,
        { hint: `chmod 600 ${this.keyFile}` },
      );
  }

  async publicKey(): Promise<string> {
    await this.check();
    return (await readFile(this.publicKeyFile, "utf8")).trim();
  }

  async caPublicKey(): Promise<string | null> {
    return readFile(this.publicKeyFile, "utf8").then(
      (t) => t.trim(),
      () => null,
    );
  }

  async grants(): Promise<Grant[]> {
    const text = await readFile(this.grantsFile, "utf8").catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return "[]";
      throw e;
    });
    try {
      return JSON.parse(text) as Grant[];
    } catch {
      throw new SshCaError(
        "CG_SSH_CA_FAILED",
        `${this.grantsFile} is not a list of grants: refusing to sign`,
      );
    }
  }

  private async saveGrants(grants: Grant[]): Promise<void> {
    const tmp = `${this.grantsFile}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(grants, null, 2) + "\n", { mode: 0o600 });
    await rename(tmp, this.grantsFile);
  }

  /**
   * Sign the key for the agent's principal from now to now+duration. The caller has checked the
   * agent, the operator's scope and the maximum; a key that is not one public key is refused here.
   */
  async sign(req: GrantRequest, now: number = Date.now()): Promise<{ grant: Grant; certificate: string }> {
    await this.check();
    const grants = await this.grants();
    const serial = grants.reduce((m, g) => Math.max(m, g.serial), 0) + 1;
    const out = await this.signAs(req, serial, now);
    await this.saveGrants([...grants, out.grant]);
    return out;
  }

  /** Sign with a serial the caller chose (a shared store hands them out); nothing is saved here. */
  async signAs(
    req: GrantRequest,
    serial: number,
    now: number = Date.now(),
  ): Promise<{ grant: Grant; certificate: string }> {
    await this.check();
    const key = req.publicKey.trim();
    if (
      !/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\n]*)?$/.test(
        key,
      ) ||
      /-cert-/.test(key)
    )
      throw new SshCaError("CG_SSH_KEY_INVALID", "not an SSH public key (one line: TYPE BASE64 [COMMENT])", {
        where: "key",
      });
    // The user is part of the principal: one that is not an account name could name another.
    if (req.user !== undefined && !ACCOUNT_NAME.test(req.user))
      throw new SshCaError("CG_SSH_KEY_INVALID", `--as must be a Linux user name, not "${req.user}"`, {
        where: "as",
      });
    const work = await mkdtemp(path.join(tmpdir(), "clawguard-grant-"));
    try {
      const pub = path.join(work, "key.pub");
      await writeFile(pub, key + "\n", { mode: 0o600 });
      let fingerprint: string;
      try {
        const r = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", pub], { timeout: 20_000 });
        fingerprint = r.stdout.split(" ")[1] ?? "";
      } catch {
        throw new SshCaError("CG_SSH_KEY_INVALID", "ssh-keygen cannot read that public key", {
          where: "key",
        });
      }
      const principal = principalOf(req.agent, req.user);
      const keyId = `clawguard grant ${serial} by ${req.operator} for ${principal}${req.user ? ` as ${req.user}` : ""}`;
      // A minute back, so a clock a little behind on the agent does not refuse a fresh grant.
      const validAfter = now - 60_000;
      const validBefore = now + req.durationMs;
      const args = ["-q", "-s", this.keyFile, "-I", keyId, "-n", principal, "-z", String(serial)];
      args.push("-V", `${stamp(validAfter)}:${stamp(validBefore)}`);
      if (req.noForwarding)
        args.push("-O", "no-port-forwarding", "-O", "no-agent-forwarding", "-O", "no-x11-forwarding");
      await keygen([...args, pub], "cannot sign the key");
      const certificate = (await readFile(path.join(work, "key-cert.pub"), "utf8")).trim();
      const grant: Grant = {
        serial,
        agent: req.agent,
        principal,
        user: req.user ?? null,
        operator: req.operator,
        keyId,
        fingerprint,
        validAfter,
        validBefore,
        noForwarding: Boolean(req.noForwarding),
        reason: req.reason ?? null,
        revokedAt: null,
        revokedBy: null,
      };
      return { grant, certificate };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Revoke a grant by serial: into the KRL first, then marked in the list. */
  async revoke(serial: number, by: string, now: number = Date.now()): Promise<Grant> {
    await this.check();
    const grants = await this.grants();
    const g = grants.find((x) => x.serial === serial);
    if (!g)
      throw new SshCaError("CG_SSH_GRANT_UNKNOWN", `no grant with serial ${serial}`, { where: "serial" });
    if (g.revokedAt === null) {
      g.revokedAt = now;
      g.revokedBy = by;
    }
    await this.writeKrl(grants.filter((x) => x.revokedAt !== null).map((x) => x.serial));
    await this.saveGrants(grants);
    return g;
  }

  /** The version of the KRL in place (0 for none): each new list's is higher. */
  async krlVersion(): Promise<number> {
    if (!(await exists(this.krlFile))) return 0;
    const listing = await keygen(["-Q", "-l", "-f", this.krlFile], "cannot read the KRL");
    return parseKrlListing(listing)?.version ?? 0;
  }

  /**
   * The KRL revoking these serials of this CA, replaced atomically. Its version is the time it
   * was made, and always above the last one's: an agent refuses a list older than the one it has.
   */
  private async writeKrl(serials: number[]): Promise<void> {
    const version = Math.max(Date.now(), (await this.krlVersion()) + 1);
    const pub = serials.length > 0 ? await readFile(this.publicKeyFile, "utf8") : "";
    await this.installKrl(await makeKrl(pub, serials, version));
  }

  /** Put these KRL bytes in place, atomically, readable by the agents' fetch (a shared store's). */
  async installKrl(bytes: Buffer): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const next = `${this.krlFile}.next`;
    await writeFile(next, bytes, { mode: 0o644 });
    await chmod(next, 0o644);
    await rename(next, this.krlFile);
  }
}

/**
 * A KRL of `version` revoking these serials of the CA whose public key this is. Only the public
 * key is needed: any node sharing a store can write the list, the CA's private key stays put.
 */
export async function makeKrl(
  caPublicKey: string,
  serials: readonly number[],
  version: number,
): Promise<Buffer> {
  const work = await mkdtemp(path.join(tmpdir(), "clawguard-krl-"));
  try {
    const spec = path.join(work, "krl.spec");
    await writeFile(spec, serials.map((s) => `serial: ${s}\n`).join(""), { mode: 0o600 });
    const out = path.join(work, "krl");
    const args = ["-q", "-k", "-z", String(version), "-f", out];
    if (serials.length > 0) {
      const pub = path.join(work, "ca.pub");
      await writeFile(pub, caPublicKey.trim() + "\n", { mode: 0o600 });
      args.push("-s", pub);
    }
    await keygen([...args, spec], "cannot write the KRL");
    return await readFile(out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export type GrantState = "active" | "expired" | "revoked";

export function grantState(g: Grant, now: number = Date.now()): GrantState {
  if (g.revokedAt !== null) return "revoked";
  return now >= g.validBefore ? "expired" : "active";
}
