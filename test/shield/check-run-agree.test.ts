/**
 * `shield check` calls a config valid exactly when `shield run` starts with it: each setup
 * below is put to both, the real command line for check and the daemon for run.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ClawguardError } from "../../src/errors.js";
import { loadShieldConfig } from "../../src/shield/config.js";
import { startManagedShield } from "../../src/shield/daemon.js";
import { cli } from "./cli-harness.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Setup {
  token?: { text: string; mode: number };
  modes?: string;
}

function configWith(s: Setup): string {
  const dir = mkdtempSync(path.join(tmpdir(), "clawguard-agree-"));
  dirs.push(dir);
  if (s.token) {
    writeFileSync(path.join(dir, "admin.token"), s.token.text);
    chmodSync(path.join(dir, "admin.token"), s.token.mode);
  }
  if (s.modes !== undefined) writeFileSync(path.join(dir, "modes.json"), s.modes);
  const file = path.join(dir, "shield.yaml");
  writeFileSync(
    file,
    [
      "listen: 127.0.0.1:0",
      "log: { path: shield.db }",
      "admin: { listen: 127.0.0.1:0, token_file: admin.token, state_file: modes.json }",
      "agents:",
      "  - { id: scout, sources: [10.0.0.1/32], allow: [api.example.com] }",
      "",
    ].join("\n"),
  );
  return file;
}

/** What run says: null when it starts (and is stopped again), else the error's code. */
async function runVerdict(file: string): Promise<string | null> {
  try {
    const running = await startManagedShield(await loadShieldConfig(file), { watch: false });
    await running.close();
    return null;
  } catch (e) {
    if (e instanceof ClawguardError) return e.code;
    throw e;
  }
}

const GOOD_TOKEN = { text: "0123456789abcdef0123456789abcdef\n", mode: 0o600 };

const SETUPS: Record<string, Setup> = {
  "a good token": { token: GOOD_TOKEN },
  "no token file": {},
  "a token file others can read": { token: { ...GOOD_TOKEN, mode: 0o644 } },
  "a token too short": { token: { text: "short\n", mode: 0o600 } },
  "a saved mode file that is not JSON": { token: GOOD_TOKEN, modes: "{ not json" },
};

describe("shield check and shield run", () => {
  for (const [name, setup] of Object.entries(SETUPS))
    it(`agree on a config with ${name}`, async () => {
      const file = configWith(setup);
      const run = await runVerdict(file);
      const check = await cli("shield", "check", "--config", file, "--json");
      if (run === null) {
        expect(check.code, check.err).toBe(0);
        expect(JSON.parse(check.out)).toMatchObject({ valid: true });
      } else {
        expect(check.code).toBe(2);
        expect(JSON.parse(check.err)).toMatchObject({ code: run });
      }
    });

  it("each setup but the first is one run refuses, so the comparison can fail", async () => {
    const refused = [];
    for (const [name, setup] of Object.entries(SETUPS))
      if ((await runVerdict(configWith(setup))) !== null) refused.push(name);
    expect(refused).toEqual(Object.keys(SETUPS).slice(1));
  });
});
