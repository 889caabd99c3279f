/**
 * Commands are loaded as the command line names them: each module's entry lists what the module
 * adds, a named command is built exactly as the whole program has it, and a command line that
 * names none (help, a misspelling, completion) gets every command.
 */
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { commandPath } from "../../src/cli/help.js";
import { addCommands, type CommandEntry, type LazyCommands } from "../../src/cli/lazy.js";
import { buildProgram, COMMANDS } from "../../src/cli/main.js";

const PROGRAM = await buildProgram();

function everyCommand(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...everyCommand(c)]);
}

/** Each lazy entry of the table with the path of the command it sits under. */
function lazyEntries(entries: readonly CommandEntry[], under: string[] = []): Array<[string, LazyCommands]> {
  return entries.flatMap((e): Array<[string, LazyCommands]> => {
    if (typeof e === "function") return [];
    if ("load" in e) return [[under.join(" "), e]];
    return lazyEntries(e.members, [...under, e.name]);
  });
}

describe("the command table", () => {
  it.each(lazyEntries(COMMANDS).map(([under, e]) => [`${under} ${e.names.join(",")}`.trim(), e] as const))(
    "%s: the module adds the commands its entry names, in that order",
    async (_name, entry) => {
      const parent = new Command("parent");
      (await entry.load())(parent, () => undefined);
      expect(parent.commands.map((c) => c.name())).toEqual(entry.names);
    },
  );
});

describe("a command line that names a command", () => {
  const paths = everyCommand(PROGRAM).map(commandPath);

  it.each(paths)("clawguard %s builds that command as the whole program has it", async (path) => {
    const words = path.split(" ");
    const lean = await buildProgram(undefined, undefined, words);
    const here = everyCommand(lean).find((c) => commandPath(c) === path);
    const whole = everyCommand(PROGRAM).find((c) => commandPath(c) === path)!;
    expect(here?.helpInformation()).toBe(whole.helpInformation());
    expect(everyCommand(here!).map(commandPath)).toEqual(everyCommand(whole).map(commandPath));
  });

  it("loads that command's module and no other", async () => {
    const lean = await buildProgram(undefined, undefined, ["shield", "enroll", "scout", "--config", "x"]);
    expect(everyCommand(lean).map(commandPath)).toEqual([
      "shield",
      "shield enroll",
      "shield revoke",
      "shield wireguard-sync",
    ]);
    const audit = await buildProgram(undefined, undefined, ["audit", "--json"]);
    expect(audit.commands.map((c) => c.name())).toEqual(["audit"]);
  });

  it.each([
    [[]],
    [["--help"]],
    [["help", "shield"]],
    [["shiel"]],
    [["shield", "--help"]],
    [["completion", "bash"]],
  ])("%j gets every command", async (words) => {
    const program = await buildProgram(undefined, undefined, words);
    const all = everyCommand(PROGRAM).map(commandPath);
    const got = everyCommand(program).map(commandPath);
    // Below a group the words name, only that group is full.
    if (words[0] === "shield") expect(got).toEqual(all.filter((p) => p.split(" ")[0] === "shield"));
    else expect(got).toEqual(all);
  });
});

describe("addCommands", () => {
  /** An entry that counts its loads. */
  function counted(names: string[], wholeProgram = false) {
    const entry = {
      names,
      loads: 0,
      wholeProgram,
      load: async () => {
        entry.loads++;
        return (parent: Command) => {
          for (const n of names) parent.command(n);
        };
      },
    };
    return entry;
  }

  it("loads the module a word names, or every module when the word names none", async () => {
    const a = counted(["a"]);
    const b = counted(["b1", "b2"]);
    const c = counted(["c"], true);
    const group = { name: "g", description: "a group", members: [a, b] };
    const table = [group, c];

    await addCommands(new Command(), table, ["g", "b2", "--x"], () => undefined);
    expect([a.loads, b.loads, c.loads]).toEqual([0, 1, 0]);

    await addCommands(new Command(), table, ["g", "nope"], () => undefined);
    expect([a.loads, b.loads, c.loads]).toEqual([1, 2, 0]);

    const all = new Command();
    await addCommands(all, table, ["c"], () => undefined);
    expect([a.loads, b.loads, c.loads]).toEqual([2, 3, 1]);
    expect(everyCommand(all).map(commandPath)).toEqual(["g", "g a", "g b1", "g b2", "c"]);
  });
});
