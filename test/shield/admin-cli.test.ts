import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, until } from "./admin-harness.js";
import { curl, sha256, Upstream } from "./proxy-harness.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const SCOUT = "scout-proxy-password";

let dir: string;
let file: string;
let web: Upstream;
let shield: ChildProcess;
let stdout = "";
let stderr = "";
let proxyPort: number;
let adminPort: number;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: 20_000 },
      (err, out, errOut) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout: out, stderr: errOut });
      },
    );
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "clawguard-admin-cli-"));
  web = await new Upstream("127.0.0.3").start();
  proxyPort = await freePort();
  adminPort = await freePort();
  file = path.join(dir, "shield.yaml");
  writeFileSync(path.join(dir, "admin.token"), ADMIN_TOKEN + "\n", { mode: 0o600 });
  writeFileSync(
    file,
    `# the CLI test's shield
listen: 127.0.0.1:${proxyPort}
log: { path: shield.db }
admin:
  listen: 127.0.0.1:${adminPort}
  token_file: admin.token
fleets:
  acme: {}
agents:
  - { id: scout, fleet: acme, token_sha256: "${sha256(SCOUT)}", allow: [127.0.0.3/32] }
`,
  );
  shield = spawn(process.execPath, [BIN, "shield", "run", "--config", file, "--json"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  shield.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  shield.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  await until(() => (/"listening"/.test(stdout) ? true : undefined), "the shield to listen", 30_000);
}, 60_000);

afterAll(async () => {
  if (shield && shield.exitCode === null) {
    const exited = new Promise((r) => shield.once("exit", r));
    shield.kill("SIGTERM");
    await exited;
  }
  await web?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const scout = (p = "/") =>
  curl([
    "-x",
    `http://127.0.0.1:${proxyPort}`,
    "--proxy-user",
    `scout:${SCOUT}`,
    `http://127.0.0.3:${web.port}${p}`,
  ]);

// Every step spawns the CLI, a whole Node process: allow for a loaded machine.
describe("clawguard shield status | agents | mode | rules", { timeout: 120_000 }, () => {
  it("announces the admin address when it starts", () => {
    const first = JSON.parse(stdout.split("\n")[0]!);
    expect(first).toMatchObject({ event: "listening", port: proxyPort, admin: { port: adminPort } });
  });

  it("reads address and token from the config, and has a JSON twin", async () => {
    expect((await scout()).status).toBe(200);
    const text = await cli(["shield", "status", "--config", file]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/decisions: [1-9]\d* allowed/);
    expect(text.stdout).toMatch(/mode: global enforce, fleet acme inherits/);
    const json = await cli(["shield", "status", "--config", file, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      schema: "clawguard.shield-status/v1",
      modes: { global: "enforce" },
    });
  });

  it("takes address and token from flags and from the environment", async () => {
    const flags = await cli([
      "shield",
      "agents",
      "--admin",
      `http://127.0.0.1:${adminPort}`,
      "--token-file",
      "admin.token",
    ]);
    expect(flags.code).toBe(0);
    expect(flags.stdout).toMatch(/^AGENT\s+FLEET/);
    expect(flags.stdout).toMatch(/scout\s+acme\s+-\s+enforce/);
    const env = await cli(["shield", "agents", "--json"], {
      CLAWGUARD_ADMIN_URL: `http://127.0.0.1:${adminPort}`,
      CLAWGUARD_ADMIN_TOKEN_FILE: path.join(dir, "admin.token"),
    });
    expect(env.code).toBe(0);
    expect(JSON.parse(env.stdout).agents[0]).toMatchObject({ id: "scout", fleet: "acme" });
  });

  it("switches modes of an agent, a fleet and everything", async () => {
    const lock = await cli(["shield", "mode", "lockdown", "--agent", "scout", "--config", file]);
    expect(lock.code).toBe(0);
    expect(lock.stdout).toMatch(/agent scout: lockdown/);
    expect((await scout()).status).toBe(403);
    expect((await cli(["shield", "agents", "--config", file])).stdout).toMatch(/scout.*lockdown\*/);
    await cli(["shield", "mode", "inherit", "--agent", "scout", "--config", file]);
    expect((await scout()).status).toBe(200);
    await cli(["shield", "mode", "lockdown", "--fleet", "acme", "--config", file]);
    expect((await scout()).status).toBe(403);
    await cli(["shield", "mode", "inherit", "--fleet", "acme", "--config", file]);
    const g = await cli(["shield", "mode", "audit", "--config", file, "--json"]);
    expect(JSON.parse(g.stdout).modes.global).toBe("audit");
    await cli(["shield", "mode", "inherit", "--global", "--config", file]);
    expect((await scout()).status).toBe(200);
  });

  it("lists, adds and removes rules, and the file keeps its comment", async () => {
    const add = await cli([
      "shield",
      "rules",
      "add",
      "deny",
      "127.0.0.3/32",
      "--agent",
      "scout",
      "--config",
      file,
    ]);
    expect(add.code).toBe(0);
    expect((await scout()).status).toBe(403);
    const list = await cli(["shield", "rules", "--config", file]);
    expect(list.stdout).toMatch(/agent scout:\n {2}deny {2}127\.0\.0\.3\/32\n {2}allow 127\.0\.0\.3\/32/);
    expect(readFileSync(file, "utf8")).toContain("# the CLI test's shield");
    const rm = await cli([
      "shield",
      "rules",
      "remove",
      "deny",
      "127.0.0.3/32",
      "--agent",
      "scout",
      "--config",
      file,
    ]);
    expect(rm.code).toBe(0);
    expect((await scout()).status).toBe(200);
  });

  it("asks the running shield what it would decide, and exits 1 when a destination is denied", async () => {
    const live = (...args: string[]) => cli(["shield", "check", "--live", "--config", file, ...args]);
    const web1 = `http://127.0.0.3:${web.port}/x`;
    const mixed = await live("--agent", "scout", web1, "evil.test");
    expect(mixed.code, mixed.stderr).toBe(1);
    expect(mixed.stdout).toMatch(/^agent scout \(fleet acme\), mode enforce, asked the running shield/);
    expect(mixed.stdout).toMatch(
      new RegExp(`allowed\\s+GET 127\\.0\\.0\\.3:${web.port}/x via 127\\.0\\.0\\.3`),
    );
    expect(mixed.stdout).toMatch(/denied\s+CONNECT evil\.test:443\s+default/);
    const json = await live("--agent", "scout", "--json", web1);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      schema: "clawguard.shield-check/v1",
      live: true,
      results: [{ decision: "allowed", rule: "agent:scout allow 127.0.0.3/32" }],
    });
    // The admin port is the shield's own: refused though the agent may reach 127.0.0.3 only.
    const own = await live("--agent", "scout", `127.0.0.1:${adminPort}`);
    expect(own.code).toBe(1);
    expect(
      (await live("--agent", "scout", "--expect", "denied", `127.0.0.1:${adminPort}`, "evil.test")).code,
    ).toBe(0);
    const all = await live("--all-agents", "--expect", "allowed", web1);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^1 agent\(s\), asked the running shield/);
    expect(all.stdout).toMatch(/^scout\s+enforce\s+allowed$/m);
    writeFileSync(
      path.join(dir, "policy-tests.yaml"),
      `- agent: scout\n  allowed: ["${web1}"]\n  denied: [evil.test, "127.0.0.1:${adminPort}"]\n`,
    );
    const tests = await cli(["shield", "check", "--live", "--config", file, "--tests", "policy-tests.yaml"]);
    expect(tests.code, tests.stdout + tests.stderr).toBe(0);
    expect(tests.stdout).toMatch(/3 expectation\(s\) in 1 case\(s\), all hold/);
    for (const [args, message] of [
      [["--agent", "scout"], /give one or more/],
      [["--agent", "nobody", "evil.test"], /HTTP 404 \(agent\): no agent "nobody"/],
      [["--agent", "scout", "ftp://evil.test/"], /not ftp/],
      [["evil.test"], /exactly one of --agent/],
    ] as Array<[string[], RegExp]>) {
      const r = await live(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    const noLive = await cli([
      "shield",
      "check",
      "--config",
      file,
      "--admin",
      "http://127.0.0.1:1",
      "evil.test",
    ]);
    expect(noLive.code).toBe(2);
    expect(noLive.stderr).toMatch(/add --live/);
  });

  it("exits 2 with a message on a bad rule, a refused token, an unreachable API or bad usage", async () => {
    const bad = await cli(["shield", "rules", "add", "allow", "http://x/", "--config", file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/HTTP 400 \(rule\)/);
    writeFileSync(path.join(dir, "wrong.token"), "not-the-token-at-all\n", { mode: 0o600 });
    const refused = await cli([
      "shield",
      "status",
      "--admin",
      `http://127.0.0.1:${adminPort}`,
      "--token-file",
      "wrong.token",
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refused the token/);
    const closed = await freePort();
    const down = await cli([
      "shield",
      "status",
      "--admin",
      `http://127.0.0.1:${closed}`,
      "--token-file",
      "admin.token",
    ]);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/unreachable \(ECONNREFUSED\)/);
    const nothing = await cli(["shield", "status"]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/no admin API address/);
    const mode = await cli(["shield", "mode", "party", "--config", file]);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toMatch(/mode must be one of/);
    const two = await cli(["shield", "mode", "audit", "--agent", "a", "--fleet", "b", "--config", file]);
    expect(two.code).toBe(2);
  });

  it("reaches the shield through a config with an error outside admin, and names admin's own errors", async () => {
    // A file being edited: an agent in a tier nobody defined. The shield would refuse it, yet
    // the operator still needs to see the shield it runs.
    const editing = path.join(dir, "editing.yaml");
    writeFileSync(
      editing,
      readFileSync(file, "utf8") + "  - { id: rover, tier: nope, sources: [10.0.0.9/32] }\n",
    );
    const check = await cli(["shield", "check", "--config", editing]);
    expect(check.code).toBe(2);
    expect(check.stderr).toMatch(/tier "nope" is not defined/);
    for (const args of [
      ["status"],
      ["agents"],
      ["rules"],
      ["check", "--live", "--agent", "scout", "127.0.0.3:80"],
    ]) {
      const r = await cli(["shield", ...args, "--config", editing]);
      expect(r.stderr, args.join(" ")).toBe("");
      expect(r.code, args.join(" ")).toBe(0);
    }
    const badListen = path.join(dir, "bad-listen.yaml");
    writeFileSync(badListen, `admin:\n  listen: nowhere\n  token_file: admin.token\n`);
    const r = await cli(["shield", "status", "--config", badListen]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${badListen}:2: admin.listen:`);
  });

  it("reloads on SIGHUP and keeps running on a broken file", async () => {
    const good = readFileSync(file, "utf8");
    writeFileSync(file, good + "oops: [\n");
    shield.kill("SIGHUP");
    await until(
      () => (/reload \(SIGHUP\) failed/.test(stderr) ? true : undefined),
      "the failed reload on stderr",
    );
    expect(stderr).toMatch(/shield\.yaml:\d+: invalid YAML/);
    // The config is broken now: the address and token come from flags.
    const st = await cli([
      "shield",
      "status",
      "--admin",
      `http://127.0.0.1:${adminPort}`,
      "--token-file",
      "admin.token",
    ]);
    expect(st.stdout).toMatch(/FAILED, running policy kept/);
    expect((await scout()).status).toBe(200);
    writeFileSync(file, good);
    shield.kill("SIGHUP");
    await until(() => (/"reloaded"/.test(stdout) ? true : undefined), "the reload event");
    expect(shield.exitCode).toBeNull();
  });
});
