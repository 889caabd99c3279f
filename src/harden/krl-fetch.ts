/**
 * `clawguard ssh-ca fetch-krl`: the agent's side of revocation, run by a systemd timer. It gets
 * the shield's KRL over the enrolled tunnel, and installs it where sshd's RevokedKeys points only
 * when `ssh-keygen -Q -l` reads it as a KRL and its version is not below the list in place; the
 * file is replaced by a rename, so sshd reads the old list or the new one, never half of one.
 * Whatever fails, the list in place stays, and the attempt is recorded (for `audit`, which says
 * how long ago a list last came).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { promisify } from "node:util";
import { ClawguardError } from "../errors.js";
import {
  KRL_STATE_FILE,
  parseKrlFetchState,
  parseKrlListing,
  type KrlFetchState,
  type KrlListing,
} from "../facts/krl.js";
import { SSH_CA_KRL } from "../render/sshd-ca.js";

const run = promisify(execFile);

export { KRL_STATE_FILE };
const MAX_BYTES = 4 * 1024 * 1024;

export interface FetchKrlOptions {
  url: string;
  /** Where sshd's RevokedKeys points. */
  krlFile?: string;
  stateFile?: string;
  timeoutMs?: number;
  now?: () => number;
}

export interface FetchKrlResult {
  /** A new list replaced the one in place; false when the shield's is the same. */
  installed: boolean;
  version: number;
  serials: number;
  sha256: string;
}

/** A URL the fetcher may use: http or https, with a host, and no credentials in it. */
export function checkKrlUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ClawguardError(
      "CG_USAGE",
      `--from: "${text}" is not a URL (e.g. http://10.77.0.1:3129/ssh/krl)`,
    );
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.hostname === "" || u.username || u.password)
    throw new ClawguardError(
      "CG_USAGE",
      `--from: "${text}" must be an http:// or https:// URL with no credentials (e.g. http://10.77.0.1:3129/ssh/krl)`,
    );
  return u;
}

function get(url: URL, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) =>
      reject(
        new ClawguardError("CG_KRL_UNREACHABLE", `${url.href}: ${why}; the KRL in place stays`, {
          hint: "is the tunnel to the shield up (wg show), and does the shield serve ssh_access.krl_listen?",
        }),
      );
    const req = (url.protocol === "https:" ? https : http).get(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(`the shield answered ${res.statusCode ?? "?"} ${res.statusMessage ?? ""}`.trim());
      }
      const parts: Buffer[] = [];
      let size = 0;
      res.on("data", (b: Buffer) => {
        size += b.length;
        if (size > MAX_BYTES) {
          req.destroy();
          fail(`the answer is larger than ${MAX_BYTES} bytes`);
        } else parts.push(b);
      });
      res.on("end", () => resolve(Buffer.concat(parts)));
      res.on("error", (e) => fail(e.message));
    });
    req.on("timeout", () => {
      req.destroy();
      fail(`no answer within ${timeoutMs} ms`);
    });
    req.on("error", (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
  });
}

/** The listing of a KRL file, or null when ssh-keygen does not read it as one. */
async function listing(file: string): Promise<KrlListing | null> {
  try {
    const r = await run("ssh-keygen", ["-Q", "-l", "-f", file], { timeout: 20_000 });
    return parseKrlListing(r.stdout);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new ClawguardError("CG_SYSTEM", "ssh-keygen is not installed: no KRL can be checked", {
        hint: "apt-get install openssh-client",
      });
    return null;
  }
}

async function writeAtomic(file: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, data, { mode });
  await rename(tmp, file);
}

async function record(file: string, state: KrlFetchState): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  await writeAtomic(file, JSON.stringify(state, null, 2) + "\n", 0o644);
}

export async function fetchKrl(o: FetchKrlOptions): Promise<FetchKrlResult> {
  const url = checkKrlUrl(o.url);
  const krlFile = o.krlFile ?? SSH_CA_KRL;
  const stateFile = o.stateFile ?? KRL_STATE_FILE;
  const now = o.now ?? Date.now;
  const before = parseKrlFetchState(await readFile(stateFile, "utf8").catch(() => ""));
  const attempt = now();
  try {
    const body = await get(url, o.timeoutMs ?? 10_000);
    const sha256 = createHash("sha256").update(body).digest("hex");
    const tmp = path.join(path.dirname(krlFile), `.${path.basename(krlFile)}.${process.pid}.fetch`);
    let installed = false;
    let got: KrlListing;
    try {
      await writeFile(tmp, body, { mode: 0o644 });
      const parsed = await listing(tmp);
      if (parsed === null)
        throw new ClawguardError(
          "CG_KRL_REFUSED",
          `${url.href} sent ${body.length} bytes that ssh-keygen -Q does not read as a KRL; the KRL in place stays`,
        );
      got = parsed;
      const current = await readFile(krlFile).catch(() => null);
      const same = current !== null && createHash("sha256").update(current).digest("hex") === sha256;
      if (!same) {
        // An empty file (harden's placeholder) revokes nothing; anything else is a list to compare.
        const held = current !== null && current.length > 0 ? await listing(krlFile) : null;
        if (held !== null && got.version < held.version)
          throw new ClawguardError(
            "CG_KRL_REFUSED",
            `${url.href} sent a KRL of version ${got.version}, older than version ${held.version} in ${krlFile}; the KRL in place stays`,
            { hint: "a list is never replaced by an older one: check the shield's SSH CA and clock" },
          );
        await rename(tmp, krlFile);
        installed = true;
      }
    } finally {
      await rm(tmp, { force: true });
    }
    await record(stateFile, {
      schema: "clawguard.krl-fetch/v1",
      url: url.href,
      lastAttempt: attempt,
      lastSuccess: attempt,
      error: null,
      version: got.version,
      sha256,
    });
    return { installed, version: got.version, serials: got.serials, sha256 };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    await record(stateFile, {
      schema: "clawguard.krl-fetch/v1",
      url: url.href,
      lastAttempt: attempt,
      lastSuccess: before?.url === url.href ? before.lastSuccess : null,
      error: why,
      version: before?.version ?? null,
      sha256: before?.sha256 ?? null,
    }).catch(() => undefined);
    throw e;
  }
}
