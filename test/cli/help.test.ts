/**
 * Every command's --help ends with its exit codes and an example that parses as it stands; the
 * completion scripts offer exactly the commands and flags the program has.
 */
import { spawnSync } from "node:child_process";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";
import { completionScript } from "../../src/cli/completion.js";
import { commandPath } from "../../src/cli/help.js";
import { parseCommandLine, shellWords } from "../helpers/cli-parse.js";
import { runCli } from "../helpers/run-cli.js";

/** Every command, each module loaded (main loads only the ones a command line names). */
const PROGRAM = await buildProgram();

function allCommands(): Command[] {
  const out: Command[] = [];
  const walk = (c: Command) => {
    for (const s of c.commands) {
      out.push(s);
      walk(s);
    }
  };
  walk(PROGRAM);
  return out;
}

describe("--help", () => {
  const commands = allCommands().map(commandPath);

  it("finds every command, sub-commands included", () => {
    expect(commands).toEqual(
      expect.arrayContaining(["audit", "shield rules add", "lockdown rollback", "completion"]),
    );
  });

  it.each(commands)("clawguard %s --help shows exit codes and an example that parses", async (name) => {
    const r = await runCli([...name.split(" "), "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /\nExit codes:\n {2}0 {2}.+\n(?: {2}1 {2}.+\n)? {2}2 {2}usage, config or runtime error\n/,
    );
    const example = /\nExample:\n {2}(clawguard .+)\n/.exec(r.out)?.[1];
    expect(example, r.out).toBeDefined();
    const words = shellWords(example!.replace(/\s+>.*$/, "")).slice(1);
    expect(words.slice(0, name.split(" ").length)).toEqual(name.split(" "));
    const parsed = await parseCommandLine(words);
    expect(parsed, example).toMatchObject({ ok: true });
  });
});

const haveBash = spawnSync("bash", ["-c", "true"]).status === 0;

/** What bash offers after `typed` (the last word is the one being completed). */
function offered(script: string, typed: string[]): string[] {
  const words = ["clawguard", ...typed].map((w) => `'${w}'`).join(" ");
  const r = spawnSync(
    "bash",
    [
      "-c",
      `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${typed.length}; _clawguard; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: "utf8" },
  );
  expect(r.stderr).toBe("");
  return r.stdout.split("\n").filter(Boolean);
}

describe.runIf(haveBash)("clawguard completion bash", () => {
  const program = PROGRAM;
  const script = completionScript(program, "bash");

  it("offers the top-level commands", () => {
    expect(offered(script, [""]).sort()).toEqual(
      expect.arrayContaining([
        "audit",
        "harden",
        "shield",
        "lockdown",
        "rollback",
        "cloud-init",
        "completion",
        "checks",
      ]),
    );
    expect(offered(script, ["sh"])).toEqual(["shield"]);
  });

  it("offers a sub-command's own flags after earlier words", () => {
    expect(offered(script, ["audit", "--f"]).sort()).toEqual(["--fail-on", "--format"]);
    expect(offered(script, ["shield", "rules", ""])).toEqual(
      expect.arrayContaining(["list", "add", "remove"]),
    );
    const add = program.commands
      .find((c) => c.name() === "shield")!
      .commands.find((c) => c.name() === "rules")!;
    const flags = add.commands.find((c) => c.name() === "add")!.options.map((o) => o.long!);
    expect(offered(script, ["shield", "rules", "add", "--"]).sort()).toEqual([...flags, "--help"].sort());
  });

  it("is printed by clawguard completion, and zsh's loads it through bashcompinit", async () => {
    expect((await runCli(["completion", "bash"])).out).toBe(script);
    const zsh = await runCli(["completion", "zsh"]);
    expect(zsh.out.startsWith("#compdef clawguard\n")).toBe(true);
    expect(zsh.out).toContain("bashcompinit");
    expect(zsh.out).toContain(script);
    expect((await runCli(["completion", "fish"])).code).toBe(2);
  });
});
