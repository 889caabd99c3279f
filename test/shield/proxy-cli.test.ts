import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLogReader } from "../../src/shield/log/index.js";
import { curl, sha256, Upstream } from "./proxy-harness.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const TOKEN = "cli-test-token";

let dir: string;
let web: Upstream;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "clawguard-shield-cli-"));
  web = await new Upstream("127.0.0.3").start();
});

afterAll(async () => {
  await web?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** `clawguard ARGS` through plain `node`, or with `direct` as the bin itself (its shebang line). */
function run(args: string[], direct = false): Run {
  const child = direct
    ? spawn(BIN, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
    : spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function until(what: () => boolean, label: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const goodConfig = (port: number, log: string) => `
listen: 127.0.0.1:${port}
log: { path: ${log} }
agents:
  - { id: scout, token_sha256: "${sha256(TOKEN)}", allow: [127.0.0.3/32] }
`;

describe("clawguard shield run", () => {
  it("exits 2 and names the file and key on an invalid config, without serving", async () => {
    const port = await freePort();
    const file = path.join(dir, "bad.yaml");
    writeFileSync(file, goodConfig(port, "bad.db") + "alow: [example.com]\n");
    const r = run(["shield", "run", "--config", file]);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toContain(file);
    expect(r.stderr()).toMatch(/alow/);
    expect(r.stdout()).not.toMatch(/listening/);
    const probe = await curl(["-x", `http://127.0.0.1:${port}`, `http://127.0.0.3:${web.port}/`]);
    expect(probe.status).toBe(0);

    const missing = run(["shield", "run", "--config", path.join(dir, "nope.yaml")]);
    expect(await missing.exit).toBe(2);
    expect(missing.stderr()).toContain("nope.yaml");
  });

  it("runs with the Node flags it needs when started as clawguard, and names them when they are missing", async () => {
    const port = await freePort();
    const file = path.join(dir, "flags.yaml");
    writeFileSync(file, goodConfig(port, path.join(dir, "flags.db")));
    for (const direct of [true, false]) {
      const r = run(["shield", "run", "--config", file], direct);
      await until(() => r.stdout().includes("listening"), "the listening line");
      r.child.kill("SIGTERM");
      expect(await r.exit).toBe(0);
      if (direct) expect(r.stderr()).toBe("");
      else expect(r.stderr()).toMatch(/started without --no-memory-reducer/);
    }
  });

  it("serves, then on SIGTERM stops, flushes every record to the log and exits 0", async () => {
    const port = await freePort();
    const log = path.join(dir, "shield.db");
    const file = path.join(dir, "shield.yaml");
    writeFileSync(file, goodConfig(port, log));
    const r = run(["shield", "run", "--config", file, "--json"]);
    await until(() => r.stdout().includes('"listening"'), "the listening event");
    const event = JSON.parse(r.stdout().split("\n")[0]!) as Record<string, unknown>;
    expect(event).toMatchObject({ schema: "clawguard.shield-run/v1", event: "listening", port, agents: 1 });

    const proxy = `http://127.0.0.1:${port}`;
    const allowed = await curl([
      "-x",
      proxy,
      "--proxy-user",
      `scout:${TOKEN}`,
      `http://127.0.0.3:${web.port}/x?q=1`,
    ]);
    expect(allowed.status).toBe(200);
    const denied = await curl([
      "-x",
      proxy,
      "--proxy-user",
      `scout:${TOKEN}`,
      `http://127.0.0.9:${web.port}/`,
    ]);
    expect(denied.status).toBe(403);
    r.child.kill("SIGTERM");
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/"stopped"/);

    const reader = openLogReader(log);
    try {
      const records = reader.query({});
      expect(records.map((x) => [x.agent, x.host, x.path, x.decision])).toEqual([
        ["scout", "127.0.0.3", "/x", "allowed"],
        ["scout", "127.0.0.9", "/", "denied"],
      ]);
      expect(reader.verify()).toMatchObject({ ok: true, count: 2 });
      expect(JSON.stringify(records)).not.toContain(TOKEN);
    } finally {
      await reader.close();
    }
  });

  it("stops on SIGINT too", async () => {
    const port = await freePort();
    const file = path.join(dir, "int.yaml");
    writeFileSync(file, goodConfig(port, path.join(dir, "int.db")));
    const r = run(["shield", "run", "--config", file]);
    await until(() => r.stdout().includes("listening"), "the listening line");
    r.child.kill("SIGINT");
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toMatch(/stopped/);
  });
});
