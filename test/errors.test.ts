import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigError, ERROR_CODES } from "../src/errors.js";

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../docs/errors.md");

describe("error codes", () => {
  it("are each documented once in docs/errors.md, and the table names no other", () => {
    const table = readFileSync(DOC, "utf8").split("\n## Codes\n")[1] ?? "";
    const documented = [...table.matchAll(/^\| `(CG_[A-Z_]+)` /gm)].map((m) => m[1]);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort());
  });
});

describe("ConfigError", () => {
  it("names the first problem's place in where, and every problem in its message", () => {
    const err = new ConfigError("s.yaml", [
      { keyPath: "agents[0].tier", line: 4, reason: 'tier "x" is not defined' },
      { keyPath: "", reason: "something about the whole file" },
    ]);
    expect(err.code).toBe("CG_CONFIG_INVALID");
    expect(err.where).toBe("s.yaml:4");
    expect(err.reason).toBe('agents[0].tier: tier "x" is not defined');
    expect(err.message).toBe(
      's.yaml:4: agents[0].tier: tier "x" is not defined\ns.yaml: something about the whole file',
    );
  });
});
