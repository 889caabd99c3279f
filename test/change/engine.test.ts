import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { applyPlan, ApplyError } from "../../src/change/apply.js";
import type { Change } from "../../src/change/change.js";
import { listRuns, readRun } from "../../src/change/journal.js";
import { rollbackRun } from "../../src/change/rollback.js";
import { LocalHost, type RunResult } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";
import { snapshot, tempDir } from "../harden/tree.js";

const uid = process.getuid!();
const gid = process.getgid!();
const me = String(uid);
const myGroup = String(gid);

/** A small system: config files of several modes, a secret dir, a symlink, passwd naming us. */
function makeRoot(): string {
  const root = tempDir("engine");
  mkdirSync(path.join(root, "etc/ssh/sshd_config.d"), { recursive: true });
  mkdirSync(path.join(root, "home/claw/.openclaw/credentials"), { recursive: true });
  writeFileSync(
    path.join(root, "etc/passwd"),
    `root:x:0:0:root:/root:/bin/bash\nclaw:x:${uid}:${gid}::/home/claw:/bin/bash\n`,
  );
  writeFileSync(path.join(root, "etc/group"), `root:x:0:\nclaw:x:${gid}:\n`);
  writeFileSync(path.join(root, "etc/fstab"), "UUID=0b3c / ext4 errors=remount-ro 0 1\n");
  chmodSync(path.join(root, "etc/fstab"), 0o644);
  writeFileSync(path.join(root, "home/claw/.openclaw/openclaw.json"), '{ gateway: { bind: "lan" } }\n');
  chmodSync(path.join(root, "home/claw/.openclaw/openclaw.json"), 0o664);
  writeFileSync(path.join(root, "home/claw/.openclaw/credentials/my key.json"), '{"k":"v"}');
  chmodSync(path.join(root, "home/claw/.openclaw/credentials/my key.json"), 0o644);
  chmodSync(path.join(root, "home/claw/.openclaw/credentials"), 0o755);
  symlinkSync("/etc/fstab", path.join(root, "etc/fstab.link"));
  writeFileSync(path.join(root, "etc/leftover.service"), "[Service]\nExecStart=/bin/true\n");
  return root;
}

function plan(): Change[] {
  return [
    {
      kind: "file",
      path: "/etc/fstab",
      content: "UUID=0b3c / ext4 errors=remount-ro 0 1\ntmpfs /tmp tmpfs rw,noexec,nosuid,nodev 0 0\n",
      mode: 0o644,
      owner: me,
      group: myGroup,
      fixes: ["tmp.persistent_options"],
    },
    {
      kind: "file",
      path: "/etc/ssh/sshd_config.d/50-clawguard.conf",
      content: "PermitRootLogin prohibit-password\n",
      mode: 0o600,
      owner: "claw",
      group: "claw",
      fixes: ["ssh.root_login"],
    },
    {
      kind: "chmod",
      path: "/home/claw/.openclaw/credentials/my key.json",
      mode: 0o600,
      fixes: ["credentials.file_mode"],
    },
    { kind: "chmod", path: "/home/claw/.openclaw/credentials", mode: 0o700, fixes: ["credentials.dir_mode"] },
    {
      kind: "chown",
      path: "/home/claw/.openclaw/openclaw.json",
      owner: "claw",
      group: "claw",
      fixes: ["credentials.owner"],
    },
    { kind: "mkdir", path: "/var", mode: 0o755, owner: me, group: myGroup, fixes: [] },
    { kind: "mkdir", path: "/var/www", mode: 0o750, owner: "claw", group: "claw", fixes: [] },
    {
      kind: "move",
      from: "/etc/leftover.service",
      to: "/etc/leftover.service.disabled",
      fixes: ["systemd.user_unit"],
    },
    { kind: "remove", path: "/etc/fstab.link", fixes: [] },
  ];
}

describe("apply and rollback", () => {
  it("applies every kind of file change with the asked mode and owner", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const host = new LocalHost(root, { isRoot: false });
    const res = await applyPlan(host, new LocalWriter(host), plan(), { stateDir: state });
    expect(res.applied).toHaveLength(9);
    expect(readFileSync(path.join(root, "etc/fstab"), "utf8")).toContain("noexec");
    const conf = statSync(path.join(root, "etc/ssh/sshd_config.d/50-clawguard.conf"));
    expect(conf.mode & 0o777).toBe(0o600);
    expect(conf.uid).toBe(uid);
    expect(statSync(path.join(root, "home/claw/.openclaw/credentials/my key.json")).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(root, "home/claw/.openclaw/credentials")).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(root, "var/www")).mode & 0o777).toBe(0o750);
    expect(existsSync(path.join(root, "etc/leftover.service"))).toBe(false);
    expect(existsSync(path.join(root, "etc/leftover.service.disabled"))).toBe(true);
    expect(existsSync(path.join(root, "etc/fstab.link"))).toBe(false);
    // No temp files left next to what was written.
    expect(Object.keys(snapshot(root)).filter((p) => p.includes(".clawguard-"))).toEqual([]);
    // The backups are root's business only.
    expect(statSync(res.runDir).mode & 0o777).toBe(0o700);
    const { summary } = await readRun(state, res.runId);
    expect(summary).toMatchObject({ begun: 9, done: 9, status: "ok", rolledBack: false });
  });

  it("rollback restores every byte, mode and owner, deletes what was absent and moves back", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    await applyPlan(host, writer, plan(), { stateDir: state });
    expect(snapshot(root)).not.toEqual(before);
    const res = await rollbackRun(host, writer, state);
    expect(res.problems).toEqual([]);
    expect(res.undone).toHaveLength(9);
    expect(snapshot(root)).toEqual(before);
    // Nothing left to roll back: the run is marked.
    await expect(rollbackRun(host, writer, state)).rejects.toThrow(/no run to roll back/);
  });

  it("rollback with no argument picks the most recent run that changed something", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const host = new LocalHost(root, { isRoot: false });
    const writer = new LocalWriter(host);
    const first = await applyPlan(host, writer, plan().slice(0, 1), {
      stateDir: state,
      runId: "20260101T000000Z-a",
    });
    const afterFirst = snapshot(root);
    await applyPlan(host, writer, plan().slice(1, 3), { stateDir: state, runId: "20260101T000001Z-b" });
    await applyPlan(host, writer, [], { stateDir: state, runId: "20260101T000002Z-c" });
    const res = await rollbackRun(host, writer, state);
    expect(res.runId).toBe("20260101T000001Z-b");
    expect(snapshot(root)).toEqual(afterFirst);
    expect((await listRuns(state)).map((r) => r.id)).toContain(first.runId);
  });

  it("a change that fails stops the run and undoes the changes before it", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const bad: Change[] = [
      ...plan().slice(0, 3),
      { kind: "move", from: "/etc/leftover.service", to: "/etc/fstab", fixes: [] },
      ...plan().slice(3),
    ];
    const err = await applyPlan(host, new LocalWriter(host), bad, { stateDir: state }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).message).toMatch(
      /change 4 of 10 failed \(mv \/etc\/leftover.service \/etc\/fstab\): \/etc\/fstab already exists/,
    );
    expect((err as ApplyError).message).toContain("The 3 changes before it were undone");
    expect(snapshot(root)).toEqual(before);
  });

  it("refuses a plan with commands it cannot run in a foreign root before touching anything", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const before = snapshot(root);
    const host = new LocalHost(root, { isRoot: false });
    const withCommand: Change[] = [
      ...plan().slice(0, 2),
      {
        kind: "command",
        argv: ["ufw", "--force", "enable"],
        undo: ["ufw", "disable"],
        fixes: ["firewall.enabled"],
      },
    ];
    await expect(applyPlan(host, new LocalWriter(host), withCommand, { stateDir: state })).rejects.toThrow(
      /cannot run in .* without root\. Nothing was changed/,
    );
    expect(snapshot(root)).toEqual(before);
  });

  for (const [at, n] of [
    ["done", 4],
    ["begin", 6],
  ] as const) {
    it(`a crash (SIGKILL at journal record ${at} ${n}) is undone by rollback`, async () => {
      const root = makeRoot();
      const state = tempDir("state");
      const before = snapshot(root);
      const planFile = path.join(tempDir("plan"), "plan.json");
      writeFileSync(planFile, JSON.stringify(plan()));
      const child = fileURLToPath(new URL("./crash-child.ts", import.meta.url));
      const r = spawnSync(
        process.execPath,
        ["--import", "tsx", child, root, state, planFile, at, String(n)],
        {
          encoding: "utf8",
        },
      );
      expect(r.signal, r.stderr).toBe("SIGKILL");
      const { summary } = await readRun(state, "crashed");
      expect(summary.status).toBe("interrupted");
      expect(summary.begun).toBe(n);
      expect(summary.done).toBe(at === "done" ? n : n - 1);
      expect(snapshot(root)).not.toEqual(before);
      const host = new LocalHost(root, { isRoot: false });
      const res = await rollbackRun(host, new LocalWriter(host), state);
      expect(res.runId).toBe("crashed");
      expect(res.problems).toEqual([]);
      expect(snapshot(root)).toEqual(before);
    });
  }
});

/** A host whose systemctl is scripted: it says whether the unit runs, and records what it was asked. */
class ScriptedSystemd extends LocalHost {
  readonly asked: string[] = [];
  constructor(
    root: string,
    private readonly runningBefore: boolean,
    private readonly watched: string,
  ) {
    super(root, { isRoot: true });
  }

  override async run(cmd: string, args: string[]): Promise<RunResult> {
    const there = existsSync(path.join(this.root, this.watched)) ? "with" : "without";
    this.asked.push(`${[cmd, ...args].join(" ")} (${there} its drop-in)`);
    const code = args[0] === "is-active" && !this.runningBefore ? 3 : 0;
    return { code, stdout: "", stderr: "" };
  }
}

describe("a unit restarted by a run", () => {
  const DROPIN = "etc/systemd/system/demo.service.d/50-demo.conf";
  const changes = (): Change[] => [
    {
      kind: "file",
      path: `/${DROPIN}`,
      content: "[Service]\nEnvironment=A=1\n",
      mode: 0o644,
      owner: me,
      group: myGroup,
      fixes: [],
    },
    { kind: "service", unit: "demo.service", fixes: [] },
  ];

  it("is stopped by rollback when it was not running before", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const host = new ScriptedSystemd(root, false, DROPIN);
    const writer = new LocalWriter(host);
    const res = await applyPlan(host, writer, changes(), { stateDir: state });
    expect(res.steps).toEqual([{ command: "systemctl restart demo.service", ok: true }]);
    const back = await rollbackRun(host, writer, state);
    expect(back.problems).toEqual([]);
    expect(host.asked).toEqual([
      "systemctl is-active --quiet demo.service (with its drop-in)",
      "systemctl restart demo.service (with its drop-in)",
      "systemctl stop demo.service (with its drop-in)",
    ]);
    expect(existsSync(path.join(root, DROPIN))).toBe(false);
  });

  it("is restarted by rollback once its files are back when it was running before", async () => {
    const root = makeRoot();
    const state = tempDir("state");
    const host = new ScriptedSystemd(root, true, DROPIN);
    const writer = new LocalWriter(host);
    await applyPlan(host, writer, changes(), { stateDir: state });
    const back = await rollbackRun(host, writer, state);
    expect(back.problems).toEqual([]);
    expect(host.asked.slice(2)).toEqual(["systemctl restart demo.service (without its drop-in)"]);
  });
});
