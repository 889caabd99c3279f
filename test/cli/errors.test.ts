/**
 * How errors reach whoever ran clawguard: through the real entry point (bin/clawguard.js on the
 * built dist/) for errors clawguard expects, and through main() with a command of the test's
 * own for a bug, which no real command can be made to have on purpose.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { main, type Register } from "../../src/cli/main.js";
import { runCommand } from "../../src/host/host.js";
import { tempDir } from "../harden/tree.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const clawguard = (...args: string[]) => runCommand([process.execPath, BIN, ...args], { timeoutMs: 60_000 });
// Each run starts a Node process; on a loaded two-core machine that takes seconds.
const SLOW = 60_000;

function badConfig(): string {
  const file = path.join(tempDir("errors"), "shield.yaml");
  writeFileSync(
    file,
    "listen: 127.0.0.1:3128\nlog: { path: shield.db }\nagents:\n  - { id: a, tier: crew, sources: [10.0.0.1] }\n  - { id: b, fleet: acme, sources: [10.0.0.2] }\n",
  );
  return file;
}

describe("an error clawguard expects", () => {
  it(
    "is one line per problem with its file and line, and exit 2",
    async () => {
      const file = badConfig();
      const r = await clawguard("shield", "check", "--config", file);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        `clawguard: ${file}:4: agents[0].tier: tier "crew" is not defined under tiers\n` +
          `clawguard: ${file}:5: agents[1].fleet: fleet "acme" is not defined under fleets\n`,
      );
    },
    SLOW,
  );

  it(
    "is clawguard.error/v1 on stderr with --json, every problem listed",
    async () => {
      const file = badConfig();
      const r = await clawguard("shield", "check", "--config", file, "--json");
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(JSON.parse(r.stderr)).toEqual({
        schema: "clawguard.error/v1",
        code: "CG_CONFIG_INVALID",
        message: 'agents[0].tier: tier "crew" is not defined under tiers',
        where: `${file}:4`,
        problems: [
          { where: `${file}:4`, key: "agents[0].tier", message: 'tier "crew" is not defined under tiers' },
          { where: `${file}:5`, key: "agents[1].fleet", message: 'fleet "acme" is not defined under fleets' },
        ],
      });
    },
    SLOW,
  );

  it(
    "says what to do on a second line: a usage error, as text and as JSON",
    async () => {
      const text = await clawguard("audit", "--bogus");
      expect(text.code).toBe(2);
      expect(text.stderr).toBe(
        "clawguard: unknown option '--bogus'\nhint: clawguard audit --help lists what it takes\n",
      );
      const json = await clawguard("audit", "--json", "--bogus");
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stderr)).toEqual({
        schema: "clawguard.error/v1",
        code: "CG_USAGE",
        message: "unknown option '--bogus'",
        hint: "clawguard audit --help lists what it takes",
      });
    },
    SLOW,
  );

  it(
    "refuses a --root that is not there instead of auditing nothing",
    async () => {
      const root = path.join(tempDir("errors"), "not-mounted");
      const r = await clawguard("audit", "--root", root, "--json");
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(JSON.parse(r.stderr)).toMatchObject({ code: "CG_ROOT_MISSING", where: root });
    },
    SLOW,
  );

  it(
    "counts a failed system call as this machine's, not a bug",
    async () => {
      // A root whose etc is a file: the first directory install makes under it cannot be made.
      const root = tempDir("errors");
      writeFileSync(path.join(root, "etc"), "");
      const r = await clawguard("shield", "install", "--root", root, "--json");
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stderr)).toMatchObject({
        code: "CG_SYSTEM",
        message: expect.stringMatching(/ENOTDIR/),
      });
    },
    SLOW,
  );
});

/** main() with `commands` only, and what it wrote to stdout and stderr. */
async function run(commands: Register[], ...args: string[]) {
  let out = "";
  let err = "";
  vi.spyOn(process.stdout, "write").mockImplementation(
    (s: string | Uint8Array) => ((out += String(s)), true),
  );
  vi.spyOn(process.stderr, "write").mockImplementation(
    (s: string | Uint8Array) => ((err += String(s)), true),
  );
  try {
    return { code: await main(["node", "clawguard", ...args], commands), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

/** A command with a bug: it reads a setting that is not there. */
const buggy: Register = (program) => {
  program
    .command("buggy")
    .option("--json", "print JSON")
    .action(() => {
      const settings = JSON.parse("{}") as { listen: { port: number } };
      process.stdout.write(String(settings.listen.port));
    });
};

describe("an error clawguard does not expect", () => {
  it("is reported as a bug, with its stack and where to report it, and exit 2", async () => {
    const r = await run([buggy], "buggy");
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    const lines = r.err.split("\n");
    expect(lines[0]).toBe("clawguard: unexpected error, a bug in clawguard:");
    expect(lines[1]).toMatch(/^TypeError: Cannot read properties of undefined \(reading 'port'\)$/);
    expect(lines[2]).toMatch(/^ {4}at .*test\/cli\/errors\.test\.ts/);
    expect(r.err).toMatch(
      /\nclawguard: please report it with the command you ran and the lines above \(clawguard \d+\.\d+\.\d+, node v\d+/,
    );
  });

  it("is a bug in the JSON too", async () => {
    const r = await run([buggy], "buggy", "--json");
    expect(r.code).toBe(2);
    const j = JSON.parse(r.err) as Record<string, unknown>;
    expect(j).toMatchObject({
      schema: "clawguard.error/v1",
      code: "CG_INTERNAL",
      bug: true,
      message: "TypeError: Cannot read properties of undefined (reading 'port')",
    });
    expect(j.stack).toMatch(/^TypeError: .*\n {4}at /);
  });
});
