import path from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const eslint = new ESLint({ cwd: ROOT });

/** What the project's rules say of `code` if it were the file at `file` (relative to the repo). */
async function complaints(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport {};\n`, { filePath: path.join(ROOT, file) });
  return result!.messages
    .filter((m) => m.ruleId === "no-restricted-imports" || m.ruleId === "no-restricted-globals")
    .map((m) => m.message);
}

/** [file, code] pairs that must each be refused, and pairs that must pass. */
interface Boundary {
  name: string;
  refused: Array<[string, string]>;
  allowed: Array<[string, string]>;
}

const BOUNDARIES: Boundary[] = [
  {
    name: "checks are pure functions of facts",
    refused: [
      ["src/checks/x.ts", 'import { readFile } from "node:fs/promises";'],
      ["src/checks/x.ts", 'import { spawn } from "child_process";'],
      ["src/checks/x.ts", 'import { LocalHost } from "../host/host.js";'],
      ["src/checks/x.ts", 'import type { FactContext } from "../host/context.js";'],
      ["src/checks/x.ts", 'import { planHarden } from "../harden/plan.js";'],
      ["src/checks/x.ts", 'import { main } from "../cli/main.js";'],
      ["src/checks/deeper/x.ts", 'import { gatherSshd } from "../../host/gather/sshd.js";'],
      ["src/checks/x.ts", "const home = process.env.HOME;"],
    ],
    allowed: [
      ["src/checks/x.ts", 'import { ok } from "../facts/fact.js";'],
      ["src/checks/x.ts", 'import path from "node:path";'],
    ],
  },
  {
    name: "the facts folder holds plain data and pure parsers",
    refused: [
      ["src/facts/x.ts", 'import { execFile } from "node:child_process";'],
      ["src/facts/x.ts", 'import net from "node:net";'],
      ["src/facts/x.ts", 'import { HostError } from "../host/errors.js";'],
    ],
    allowed: [
      ["src/facts/x.ts", 'import { table } from "./record.js";'],
      ["src/facts/x.ts", 'import JSON5 from "json5";'],
    ],
  },
  {
    name: "render writes text and nothing else",
    refused: [
      ["src/render/x.ts", 'import { writeFileSync } from "node:fs";'],
      ["src/render/x.ts", 'import os from "node:os";'],
    ],
    allowed: [["src/render/x.ts", 'import { stringify } from "yaml";']],
  },
  {
    name: "the shield's policy decides, never resolves or dials",
    refused: [
      ["src/shield/policy/x.ts", 'import { readFileSync } from "node:fs";'],
      ["src/shield/policy/x.ts", 'import net from "node:net";'],
      ["src/shield/policy/x.ts", 'import { lookup } from "node:dns/promises";'],
      ["src/shield/policy/x.ts", 'import { request } from "node:https";'],
      ["src/shield/policy/x.ts", 'import { createServer } from "node:http";'],
      ["src/shield/policy/x.ts", 'import { exec } from "node:child_process";'],
      ["src/shield/policy/x.ts", 'import { systemResolver } from "../net/resolve.js";'],
      ["src/shield/policy/x.ts", 'import { dialChecked } from "../net/dial.js";'],
      ["src/shield/policy/x.ts", 'import { startFront } from "../proxy/front.js";'],
    ],
    allowed: [
      ["src/shield/policy/x.ts", 'import { parseIP } from "../../net/addresses.js";'],
      ["src/shield/policy/x.ts", 'import { createHash } from "node:crypto";'],
    ],
  },
  {
    name: "src/net is pure IP code",
    refused: [
      ["src/net/x.ts", 'import net from "node:net";'],
      ["src/net/x.ts", 'import { lookup } from "dns";'],
    ],
    allowed: [["src/net/x.ts", 'import { parseIP } from "./addresses.js";']],
  },
  {
    name: "only the CLI imports the CLI",
    refused: [
      ["src/harden/x.ts", 'import { renderHardenText } from "../cli/harden.js";'],
      ["src/shield/admin/x.ts", 'import { main } from "../../cli/main.js";'],
      ["src/x.ts", 'import { main } from "./cli/main.js";'],
      ["src/lockdown/x.ts", 'export { main } from "../cli/main.js";'],
    ],
    allowed: [
      ["src/cli/x.ts", 'import { main } from "./main.js";'],
      [
        "src/cli/x.ts",
        'import { readFileSync } from "node:fs";\nimport { LocalHost } from "../host/host.js";',
      ],
      ["src/host/x.ts", 'import { spawn } from "node:child_process";'],
    ],
  },
];

// Loading the project config takes seconds on a loaded machine.
describe("lint boundaries", { timeout: 30_000 }, () => {
  for (const b of BOUNDARIES) {
    it(`${b.name}: refused where it is crossed`, async () => {
      for (const [file, code] of b.refused)
        expect(await complaints(file, code), `${file}: ${code}`).toHaveLength(1);
    });
    it(`${b.name}: allowed what stays inside`, async () => {
      for (const [file, code] of b.allowed)
        expect(await complaints(file, code), `${file}: ${code}`).toEqual([]);
    });
  }

  it("says why, naming the folder crossed", async () => {
    expect(await complaints("src/checks/x.ts", 'import { LocalHost } from "../host/host.js";')).toEqual([
      expect.stringMatching(/src\/host\/ is out of bounds here: checks are pure functions of facts/),
    ]);
  });
});
