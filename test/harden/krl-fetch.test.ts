/**
 * The agent's KRL fetcher against a local server and the real ssh-keygen: a KRL replaces harden's
 * empty placeholder and then newer lists; what does not parse as a KRL, an older list, an error
 * answer and no answer at all leave the list in place, and each attempt is recorded with the
 * time of the last one that succeeded.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseKrlFetchState } from "../../src/facts/krl.js";
import { fetchKrl } from "../../src/harden/krl-fetch.js";

let dir: string;
let server: http.Server;
let url: string;
let serve: { status: number; body: Buffer } = { status: 200, body: Buffer.alloc(0) };

/** A KRL of this version revoking these serials of a throwaway CA. */
function krl(version: number, serials: number[]): Buffer {
  const spec = path.join(dir, "spec");
  const out = path.join(dir, `krl-${version}`);
  writeFileSync(spec, serials.map((s) => `serial: ${s}\n`).join(""));
  rmSync(out, { force: true });
  execFileSync("ssh-keygen", [
    "-q",
    "-k",
    "-z",
    String(version),
    "-s",
    path.join(dir, "ca.pub"),
    "-f",
    out,
    spec,
  ]);
  return readFileSync(out);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "clawguard-krl-fetch-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "ca")]);
  server = http.createServer((_req, res) => res.writeHead(serve.status).end(serve.body));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ssh/krl`;
});

afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const krlFile = () => path.join(dir, "revoked.krl");
const stateFile = () => path.join(dir, "state", "krl-fetch.json");
const state = () => parseKrlFetchState(readFileSync(stateFile(), "utf8"))!;
let clock = 1_000_000;
const fetchNow = (from = url) =>
  fetchKrl({ url: from, krlFile: krlFile(), stateFile: stateFile(), now: () => ++clock });

describe("ssh-ca fetch-krl", () => {
  it("replaces the empty placeholder with the shield's KRL, then with a newer one", async () => {
    writeFileSync(krlFile(), "");
    serve = { status: 200, body: krl(10, [3]) };
    const first = await fetchNow();
    expect(first).toMatchObject({ installed: true, version: 10, serials: 1 });
    expect(readFileSync(krlFile()).equals(serve.body)).toBe(true);
    expect(state()).toMatchObject({ lastSuccess: clock, error: null, version: 10 });

    const same = await fetchNow();
    expect(same.installed).toBe(false);
    expect(state().lastSuccess).toBe(clock);

    serve = { status: 200, body: krl(11, [3, 4]) };
    expect(await fetchNow()).toMatchObject({ installed: true, version: 11, serials: 2 });
    expect(readFileSync(krlFile()).equals(serve.body)).toBe(true);
  });

  it("keeps the list in place when the answer is no KRL, an older list, an error or nothing", async () => {
    const held = readFileSync(krlFile());
    const succeeded = state().lastSuccess;
    const cases: Array<[typeof serve | null, RegExp, string]> = [
      [
        { status: 200, body: Buffer.from("<html>captive portal</html>") },
        /does not read as a KRL/,
        "CG_KRL_REFUSED",
      ],
      [{ status: 200, body: Buffer.alloc(0) }, /does not read as a KRL/, "CG_KRL_REFUSED"],
      [{ status: 200, body: krl(9, []) }, /version 9, older than version 11/, "CG_KRL_REFUSED"],
      [{ status: 403, body: Buffer.from("no") }, /answered 403/, "CG_KRL_UNREACHABLE"],
      [null, /ECONNREFUSED/, "CG_KRL_UNREACHABLE"],
    ];
    for (const [answer, message, code] of cases) {
      if (answer) serve = answer;
      const from = answer ? url : "http://127.0.0.1:1/ssh/krl";
      const err = await fetchNow(from).then(
        () => null,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(err?.code, message.source).toBe(code);
      expect(err?.message).toMatch(message);
      expect(readFileSync(krlFile()).equals(held)).toBe(true);
      const s = state();
      expect(s.lastAttempt).toBe(clock);
      expect(s.error).toMatch(message);
      if (answer) expect(s.lastSuccess).toBe(succeeded);
    }
  });

  it("refuses a URL it should not fetch before fetching anything", async () => {
    for (const bad of ["file:///etc/shadow", "10.77.0.1:3129", "http://user:pw@10.77.0.1/ssh/krl"])
      await expect(fetchNow(bad)).rejects.toThrow(/--from/);
  });
});
