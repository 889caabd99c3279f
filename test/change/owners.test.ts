import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { applyPlan, ApplyError } from "../../src/change/apply.js";
import type { Change } from "../../src/change/change.js";
import { readRun } from "../../src/change/journal.js";
import { rollbackRun } from "../../src/change/rollback.js";
import { settle } from "../../src/harden/settle.js";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { snapshot, tempDir } from "../harden/tree.js";

const asRoot = process.getuid?.() === 0;
const uid = process.getuid!();
const gid = process.getgid!();

/** A state dir as a running gateway leaves it: secrets, a nested dir, a symlink out, a temp file. */
function makeRoot(): string {
  const root = tempDir("owners");
  const state = path.join(root, "home/openclaw/.openclaw");
  mkdirSync(path.join(state, "agents/main/sessions"), { recursive: true });
  mkdirSync(path.join(root, "etc"), { recursive: true });
  writeFileSync(
    path.join(root, "etc/passwd"),
    `root:x:0:0:root:/root:/bin/bash\nme:x:${uid}:${gid}::/home/me:/bin/bash\nopenclaw:x:4242:4242::/home/openclaw:/usr/sbin/nologin\n`,
  );
  writeFileSync(path.join(root, "etc/group"), `root:x:0:\nme:x:${gid}:\nopenclaw:x:4242:\n`);
  writeFileSync(path.join(root, "etc/fstab"), "# not the gateway's\n");
  writeFileSync(path.join(state, "openclaw.json"), "{}\n", { mode: 0o644 });
  writeFileSync(path.join(state, "agents/main/sessions/s 1.jsonl"), "{}\n", { mode: 0o644 });
  writeFileSync(path.join(state, ".staging-1.tmp"), "x", { mode: 0o644 });
  symlinkSync("/etc/fstab", path.join(state, "fstab-link"));
  return root;
}

function plan(owner: string): Change[] {
  return [
    {
      kind: "chmod",
      path: "/home/openclaw/.openclaw/.staging-1.tmp",
      mode: 0o600,
      fixes: [],
      optional: true,
    },
    { kind: "chmod", path: "/home/openclaw/.openclaw/openclaw.json", mode: 0o600, fixes: [], optional: true },
    { kind: "chown-tree", path: "/home/openclaw/.openclaw", owner, group: owner, fixes: ["user.home_owned"] },
  ];
}

describe("changes to a state dir a running program keeps changing", () => {
  it("skips an optional chmod of a file deleted since the plan, and journals nothing for it", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const host = new LocalHost(root, { isRoot: false });
    // What the program did between the plan and the apply.
    rmSync(path.join(root, "home/openclaw/.openclaw/.staging-1.tmp"));
    writeFileSync(path.join(root, "home/openclaw/.openclaw/.staging-2.tmp"), "y", { mode: 0o644 });
    const res = await applyPlan(host, new LocalWriter(host), plan("me"), { stateDir: state });
    expect(res.applied).toHaveLength(3);
    expect(lstatSync(path.join(root, "home/openclaw/.openclaw/openclaw.json")).mode & 0o777).toBe(0o600);
    const { records } = await readRun(state, res.runId);
    const begins = records.filter((r) => r.t === "begin");
    expect(begins[0]).toMatchObject({ saved: [] });
    // The tree walk happened when the change ran: the new temp file is in the journal's count.
    expect(begins[2]).toMatchObject({ saved: [{ state: "owners", entries: 8 }] });
    // A plain chmod of a missing path is still an error.
    const strict: Change[] = [
      { kind: "chmod", path: "/home/openclaw/.openclaw/nope", mode: 0o600, fixes: [] },
    ];
    await expect(applyPlan(host, new LocalWriter(host), strict, { stateDir: state })).rejects.toThrow(
      /change 1 of 1 failed \(chmod 0600 \/home\/openclaw\/.openclaw\/nope\)/,
    );
  });

  it("refuses a chown-tree of a dir that is not there, and undoes nothing it did not do", async () => {
    const root = makeRoot();
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const change: Change = { kind: "chown-tree", path: "/home/nobody", owner: "me", group: "me", fixes: [] };
    const err = await applyPlan(host, new LocalWriter(host), [change], { stateDir: tempDir("state") }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as Error).message).toMatch(/\/home\/nobody does not exist/);
    expect(snapshot(root)).toEqual(before);
  });

  it.runIf(asRoot)(
    "gives the whole tree as it is when the change runs to the new owner, and rollback gives each entry its old one",
    async () => {
      const root = makeRoot();
      const stateDir = path.join(root, "home/openclaw/.openclaw");
      const state = tempDir("state");
      const host = new LocalHost(root, { isRoot: true });
      const writer = new LocalWriter(host);
      rmSync(path.join(stateDir, ".staging-1.tmp"));
      const before = snapshot(root);
      expect((await settle(host, plan("openclaw"))).map((s) => s.change.kind)).toEqual([
        "chmod",
        "chown-tree",
      ]);
      writeFileSync(path.join(stateDir, ".staging-2.tmp"), "y", { mode: 0o600 });
      await applyPlan(host, writer, plan("openclaw"), { stateDir: state });
      for (const rel of ["", "openclaw.json", "agents", "agents/main/sessions/s 1.jsonl", ".staging-2.tmp"]) {
        const st = lstatSync(path.join(stateDir, rel));
        expect([rel, st.uid, st.gid]).toEqual([rel, 4242, 4242]);
      }
      // A symlink keeps its owner, and what it points to is never touched.
      expect(lstatSync(path.join(stateDir, "fstab-link")).uid).toBe(uid);
      expect(lstatSync("/etc/fstab").uid).toBe(0);
      // Planning again: nothing left to chown.
      expect((await settle(host, plan("openclaw"))).map((s) => s.change.kind)).toEqual([]);
      // The service, now running as openclaw, keeps making and deleting files.
      rmSync(path.join(stateDir, ".staging-2.tmp"));
      writeFileSync(path.join(stateDir, "later.db"), "z", { mode: 0o600 });
      lstatSync(path.join(stateDir, "later.db"));
      const res = await rollbackRun(host, writer, state);
      expect(res.problems).toEqual([]);
      // Entries that were there get their owner back; the new one gets the dir's old owner.
      expect(lstatSync(path.join(stateDir, "later.db")).uid).toBe(uid);
      rmSync(path.join(stateDir, "later.db"));
      expect(snapshot(root)).toEqual({
        ...before,
        // The chmod of openclaw.json is undone as well.
        "home/openclaw/.openclaw/openclaw.json": before["home/openclaw/.openclaw/openclaw.json"],
      });
      expect(readFileSync(path.join(root, "etc/fstab"), "utf8")).toBe("# not the gateway's\n");
    },
  );
});

describe("changes inside a tree another user can write", () => {
  it("refuses a chmod or chown that a directory swapped for a symlink would send outside the tree", async () => {
    const root = makeRoot();
    const state = path.join(root, "home/openclaw/.openclaw");
    // What the agent could do between plan and apply: its sessions dir becomes a link to a
    // directory of someone else's that holds a file of the same name.
    mkdirSync(path.join(root, "etc/secret"), { recursive: true });
    writeFileSync(path.join(root, "etc/secret/s 1.jsonl"), "not the agent's\n", { mode: 0o644 });
    rmSync(path.join(state, "agents/main/sessions"), { recursive: true });
    symlinkSync("../../../../../etc/secret", path.join(state, "agents/main/sessions"));
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const target = "/home/openclaw/.openclaw/agents/main/sessions/s 1.jsonl";
    const within = "/home/openclaw/.openclaw";
    const changes: Change[] = [
      { kind: "chmod", path: target, mode: 0o600, fixes: [], optional: true, within },
      { kind: "chown", path: target, owner: "me", group: "me", fixes: [], optional: true, within },
    ];
    for (const change of changes) {
      const err = await applyPlan(host, writer, [change], { stateDir: tempDir("state") }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApplyError);
      expect((err as Error).message).toMatch(/is reached through a symbolic link .*left it alone/);
    }
    expect(lstatSync(path.join(root, "etc/secret/s 1.jsonl")).mode & 0o777).toBe(0o644);
    // The same change with nothing swapped goes through; a symlink as the last part is refused.
    rmSync(path.join(state, "agents/main/sessions"));
    mkdirSync(path.join(state, "agents/main/sessions"));
    writeFileSync(path.join(state, "agents/main/sessions/s 1.jsonl"), "{}\n", { mode: 0o644 });
    await applyPlan(host, writer, [{ kind: "chmod", path: target, mode: 0o600, fixes: [], within }], {
      stateDir: tempDir("state"),
    });
    expect(lstatSync(path.join(state, "agents/main/sessions/s 1.jsonl")).mode & 0o777).toBe(0o600);
    const link: Change = { kind: "chmod", path: `${within}/fstab-link`, mode: 0o600, fixes: [], within };
    await expect(applyPlan(host, writer, [link], { stateDir: tempDir("state") })).rejects.toThrow(
      /fstab-link: is a symbolic link; left it alone/,
    );
    expect(lstatSync(path.join(root, "etc/fstab")).mode & 0o777).not.toBe(0o600);
  });

  it("rolls back a mode only inside the tree, whatever was swapped since", async () => {
    const root = makeRoot();
    const state = path.join(root, "home/openclaw/.openclaw");
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const dir = tempDir("state");
    const within = "/home/openclaw/.openclaw";
    const target = `${within}/agents/main/sessions/s 1.jsonl`;
    await applyPlan(host, writer, [{ kind: "chmod", path: target, mode: 0o600, fixes: [], within }], {
      stateDir: dir,
    });
    // Now the agent swaps the dir, hoping the rollback puts 644 on someone else's file.
    mkdirSync(path.join(root, "etc/secret"), { recursive: true });
    writeFileSync(path.join(root, "etc/secret/s 1.jsonl"), "x", { mode: 0o600 });
    rmSync(path.join(state, "agents/main/sessions"), { recursive: true });
    symlinkSync("../../../../../etc/secret", path.join(state, "agents/main/sessions"));
    const res = await rollbackRun(host, writer, dir);
    expect(res.problems.join("\n")).toMatch(/reached through a symbolic link/);
    expect(lstatSync(path.join(root, "etc/secret/s 1.jsonl")).mode & 0o777).toBe(0o600);
  });

  it("writes a file into the tree, or nowhere, and rolls it back the same way", async () => {
    const root = makeRoot();
    const state = path.join(root, "home/openclaw/.openclaw");
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const within = "/home/openclaw/.openclaw";
    const write = (content: string): Change => ({
      kind: "file",
      path: `${within}/agents/main/sessions/openclaw.json`,
      content,
      mode: 0o600,
      owner: "me",
      group: "me",
      fixes: [],
      within,
    });
    const dir = tempDir("state");
    await applyPlan(host, writer, [write('{ "gateway": {} }\n')], { stateDir: dir });
    const inside = path.join(state, "agents/main/sessions/openclaw.json");
    expect(readFileSync(inside, "utf8")).toBe('{ "gateway": {} }\n');
    expect(lstatSync(inside).mode & 0o777).toBe(0o600);
    // Swapped before the write: refused, nothing written outside.
    mkdirSync(path.join(root, "etc/secret"), { recursive: true });
    rmSync(path.join(state, "agents/main/sessions"), { recursive: true });
    symlinkSync("../../../../../etc/secret", path.join(state, "agents/main/sessions"));
    await expect(applyPlan(host, writer, [write("{}\n")], { stateDir: tempDir("state") })).rejects.toThrow(
      /sessions: is a symbolic link; left it alone/,
    );
    expect(readdirSync(path.join(root, "etc/secret"))).toEqual([]);
    // The first run's rollback would put the old (absent) state back; the new file it wrote is
    // gone with the swapped dir, and nothing lands in etc/secret either.
    await rollbackRun(host, writer, dir);
    expect(readdirSync(path.join(root, "etc/secret"))).toEqual([]);
  });

  it("refuses when the tree itself was swapped for a symlink", async () => {
    const root = makeRoot();
    const state = path.join(root, "home/openclaw/.openclaw");
    mkdirSync(path.join(root, "etc/other"), { recursive: true });
    writeFileSync(path.join(root, "etc/other/openclaw.json"), "{}\n", { mode: 0o644 });
    rmSync(state, { recursive: true });
    symlinkSync("../../etc/other", state);
    const host = new LocalHost(root, { isRoot: false });
    const change: Change = {
      kind: "chmod",
      path: "/home/openclaw/.openclaw/openclaw.json",
      mode: 0o600,
      fixes: [],
      optional: true,
      within: "/home/openclaw/.openclaw",
    };
    await expect(
      applyPlan(host, new LocalWriter(host), [change], { stateDir: tempDir("state") }),
    ).rejects.toThrow(/reached through a symbolic link/);
    expect(lstatSync(path.join(root, "etc/other/openclaw.json")).mode & 0o777).toBe(0o644);
  });
});

describe("undo order of a stopped service", () => {
  it("starts what the run stopped only after the files are back and services re-read them", async () => {
    const dir = tempDir("order");
    const log = path.join(dir, "log");
    const say = (w: string): string[] => ["sh", "-c", `echo ${w} >> '${log}'`];
    const host = new LocalHost("/");
    const changes: Change[] = [
      { kind: "command", argv: say("stop"), undo: say("start"), undoLast: true, fixes: [] },
      { kind: "command", argv: say("daemon-reload"), refresh: true, fixes: [] },
      { kind: "command", argv: say("restart"), undo: say("stop-new"), refresh: true, fixes: [] },
      { kind: "command", argv: ["false"], fixes: [] },
    ];
    const err = await applyPlan(host, new LocalWriter(host), changes, {
      stateDir: path.join(dir, "state"),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect(readFileSync(log, "utf8").trim().split("\n")).toEqual([
      "stop",
      "daemon-reload",
      "restart",
      // the rollback:
      "stop-new",
      "daemon-reload",
      "restart",
      "start",
    ]);
  });
});
