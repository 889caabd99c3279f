import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { loadModeOverrides, MODES_SCHEMA } from "../../src/shield/admin/modes-file.js";

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-modes-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(text: string): Promise<ConfigError> {
  const file = path.join(dir, "shield-modes.json");
  writeFileSync(file, text);
  const err = await loadModeOverrides(file).catch((e: unknown) => e);
  if (err instanceof ConfigError) return err;
  throw new Error(`expected a ConfigError, got ${String(err)}`);
}

const saved = (global: string, extra = "") =>
  `{\n  "schema": "${MODES_SCHEMA}",\n  "savedAt": "2026-01-01T00:00:00.000Z",\n  "global": ${global},${extra}\n  "fleets": {},\n  "agents": {}\n}\n`;

describe("the saved mode switches", () => {
  it("name the line where the JSON breaks, and what to do", async () => {
    const err = await refusal(saved('"lockdown"').replace('"lockdown",', '"lockdown"'));
    expect(err.where).toBe(path.join(dir, "shield-modes.json:5"));
    expect(err.reason).toMatch(/^not JSON: /);
    expect(err.hint).toBe("fix the file, or delete it to drop every switch made through the admin API");
  });

  it("name the line and key of a value the schema refuses", async () => {
    const err = await refusal(saved('"off"'));
    expect(err.where).toBe(path.join(dir, "shield-modes.json:4"));
    expect(err.problems[0]?.keyPath).toBe("global");
  });

  it("refuse a key written twice, which JSON.parse would take the last of", async () => {
    const err = await refusal(saved('"lockdown"', '\n  "global": null,'));
    expect(err.where).toBe(path.join(dir, "shield-modes.json:5"));
    expect(err.reason).toBe('duplicate key "global": map keys must be unique');
  });
});
