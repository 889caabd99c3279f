/**
 * Every command that takes --root (found in the real program, so a new one is covered without
 * being listed here) refuses one that holds no system before it reads a config or plans
 * anything: missing, a file, or an empty directory.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";
import { runCli } from "../helpers/run-cli.js";
import { tempDir } from "../harden/tree.js";

/** Every command, each module loaded (main loads only the ones a command line names). */
const PROGRAM = await buildProgram();

/** The words of every command that has --root itself or gets it from the command above it. */
function commandsWithRoot(): string[][] {
  const found: string[][] = [];
  const walk = (cmd: Command, words: string[], inherited: boolean) => {
    const has = inherited || cmd.options.some((o) => o.long === "--root");
    if (has && words.length > 0) found.push(words);
    for (const sub of cmd.commands) walk(sub, [...words, sub.name()], has);
  };
  walk(PROGRAM, [], false);
  return found;
}

const run = runCli;

const base = tempDir("roots");
const ROOTS = {
  missing: path.join(base, "not-mounted"),
  file: path.join(base, "a-file"),
  empty: path.join(base, "empty"),
};
writeFileSync(ROOTS.file, "");
mkdirSync(ROOTS.empty);

describe("a --root that holds no system", () => {
  const commands = commandsWithRoot();

  it("is taken by the commands that change or read another system", () => {
    const names = commands.map((w) => w.join(" "));
    for (const c of ["audit", "harden", "rollback", "lockdown", "lockdown rollback", "shield install"])
      expect(names).toContain(c);
    expect(names).toContain("shield gateway");
  });

  for (const words of commandsWithRoot())
    for (const [kind, root] of Object.entries(ROOTS))
      it(`is refused by clawguard ${words.join(" ")} when it is ${kind}`, async () => {
        const r = await run([...words, "--root", root, "--json"]);
        expect(r.code).toBe(2);
        expect(r.out).toBe("");
        expect(JSON.parse(r.err)).toMatchObject({ code: "CG_ROOT_MISSING", where: root });
      });

  it("is refused by rollback --list too, and a --state-dir that is a file is refused", async () => {
    const listed = await run(["rollback", "--list", "--root", ROOTS.empty]);
    expect(listed.code).toBe(2);
    expect(listed.err).toContain("--root is an empty directory");
    const state = await run(["rollback", "--list", "--state-dir", "/etc/passwd", "--json"]);
    expect(state.code).toBe(2);
    expect(JSON.parse(state.err)).toMatchObject({ code: "CG_USAGE", where: "/etc/passwd" });
  });
});
