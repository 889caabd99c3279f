/**
 * The ssh layer with a stand-in for the ssh binary: a script that behaves as ssh would for a
 * host that hangs, one whose key changed, one that answers. What is tested is fleet's handling
 * of the process: arguments, input, exit codes, and cutting a hung one with its children.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SshConnector } from "../../src/fleet/ssh/session.js";
import { target } from "./fake-hosts.js";

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-fake-ssh-"));
const fakeSsh = path.join(dir, "ssh");
writeFileSync(
  fakeSsh,
  `#!${process.execPath}
const fs = require("node:fs");
const { spawn } = require("node:child_process");
const args = process.argv.slice(2);
const at = args.indexOf("--");
const address = args[at + 1];
const dir = ${JSON.stringify(dir)};
fs.appendFileSync(dir + "/calls", JSON.stringify(args) + "\\n");
if (args.includes("-O")) process.exit(0);
if (address === "hang.lab") {
  // Like ssh with a ProxyJump: a child of its own that must go down with it.
  const child = spawn("sleep", ["600"], { stdio: "ignore" });
  fs.writeFileSync(dir + "/pids", process.pid + " " + child.pid);
  setInterval(() => {}, 1000);
} else if (address === "changed.lab") {
  process.stderr.write("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\\nHost key verification failed.\\n");
  process.exit(255);
} else {
  let input = "";
  process.stdin.on("data", (b) => (input += b));
  process.stdin.on("end", () => {
    process.stdout.write(JSON.stringify({ command: args[at + 2], input }));
    process.exit(address === "exit3.lab" ? 3 : 0);
  });
}
`,
);
chmodSync(fakeSsh, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function connector() {
  return SshConnector.create({ ssh: fakeSsh, acceptNewHostKeys: false, connectTimeoutS: 5 });
}

describe("commands over ssh", () => {
  it("runs a script through sh -c, with its input, and returns what it printed and its exit code", async () => {
    const c = await connector();
    const r = await c
      .shell(target("web"))
      .run("echo 'it''s'; exit 3", { input: Buffer.from("stdin!"), timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toEqual({
      command: `sh -c 'echo '\\''it'\\'''\\''s'\\''; exit 3'`,
      input: "stdin!",
    });
    const e3 = await c.shell(target("exit3")).run("true", { timeoutMs: 20_000 });
    expect(e3.code).toBe(3);
    await c.close();
  });

  it("turns ssh's own failure into the error it means", async () => {
    const c = await connector();
    await expect(c.shell(target("changed")).run("true", { timeoutMs: 20_000 })).rejects.toMatchObject({
      code: "CG_SSH_HOST_KEY_CHANGED",
      where: "changed",
    });
    await c.close();
  });

  it("cuts a host that does not answer in time, and the processes it started", async () => {
    const c = await connector();
    await expect(c.shell(target("hang")).run("true", { timeoutMs: 1500 })).rejects.toMatchObject({
      code: "CG_HOST_TIMEOUT",
      reason: "no answer within 2 s: cut",
    });
    const pids = readFileSync(path.join(dir, "pids"), "utf8").split(" ").map(Number);
    for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter(alive)).toEqual([]);
    await c.close();
  });

  it("keeps its control sockets in a directory only this user can enter, and removes it", async () => {
    const c = await connector();
    const sh = c.shell(target("web"));
    await sh.run("true", { timeoutMs: 20_000 });
    const calls = readFileSync(path.join(dir, "calls"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as string[]);
    const controlPath = calls
      .at(-1)!
      .find((a) => a.startsWith("ControlPath="))!
      .slice("ControlPath=".length);
    const controlDir = path.dirname(controlPath);
    expect(statSync(controlDir).mode & 0o777).toBe(0o700);
    await c.close();
    const last = readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n").at(-1)!;
    expect(JSON.parse(last)).toEqual(expect.arrayContaining(["-O", "exit", "--", "web.lab"]));
    expect(existsSync(controlDir)).toBe(false);
  });
});
