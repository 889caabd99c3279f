import { describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { FactContext } from "../../src/host/context.js";
import type { OpenClawFact } from "../../src/facts/openclaw.js";
import { LocalHost } from "../../src/host/host.js";
import { loadFixture } from "../helpers/fixture.js";

const UNIT = "etc/systemd/system/openclaw-gateway.service";

async function discover(root: string): Promise<OpenClawFact> {
  const fact = await new FactContext(new LocalHost(root, { isRoot: false })).get("openclaw");
  if (fact.status !== "ok") throw new Error(JSON.stringify(fact));
  expect(fact.problems).toEqual([]);
  return fact.value;
}

function edit(root: string, rel: string, fn: (s: string) => string): void {
  const p = path.join(root, rel);
  writeFileSync(p, fn(readFileSync(p, "utf8")));
}

describe("OpenClaw discovery", () => {
  it("finds the good install with its unit, user, port and token length", async () => {
    const oc = await discover(loadFixture("openclaw-good"));
    expect(oc.installs).toHaveLength(1);
    const i = oc.installs[0]!;
    expect(i).toMatchObject({
      stateDir: "/home/openclaw/.openclaw",
      owner: "openclaw",
      runsAs: "openclaw",
      bind: "loopback",
      port: 18789,
      portSource: `/${UNIT} ExecStart --port`,
      stateDirExists: true,
      workspace: "/home/openclaw/.openclaw/workspace",
      auth: { mode: "token", tokenLength: 46 },
    });
    expect(i.unit).toMatchObject({ scope: "system", enabled: true, name: "openclaw-gateway.service" });
    expect(i.unit?.environment.OPENCLAW_PROXY_URL).toBe("http://10.77.0.1:3128");
    expect(i.unit?.environmentAt.OPENCLAW_PROXY_URL).toBe("/etc/openclaw/gateway.env:2");
  });

  it("ranks flags over environment over config over defaults for the port", async () => {
    const root = loadFixture("openclaw-good");
    edit(root, UNIT, (s) =>
      s
        .replace(" --port 18789", "")
        .replace("Environment=NODE_ENV", "Environment=OPENCLAW_GATEWAY_PORT=19000 NODE_ENV"),
    );
    edit(root, "home/openclaw/.openclaw/openclaw.json", (s) => s.replace("port: 18789", "port: 18800"));
    let i = (await discover(root)).installs[0]!;
    expect([i.port, i.portSource]).toEqual([19000, `/${UNIT}:12 OPENCLAW_GATEWAY_PORT`]);
    edit(root, UNIT, (s) => s.replace("OPENCLAW_GATEWAY_PORT=19000 ", ""));
    i = (await discover(root)).installs[0]!;
    expect([i.port, i.portSource]).toEqual([18800, "/home/openclaw/.openclaw/openclaw.json gateway.port"]);
    edit(root, "home/openclaw/.openclaw/openclaw.json", (s) => s.replace("port: 18800,", ""));
    i = (await discover(root)).installs[0]!;
    expect([i.port, i.portSource]).toEqual([18789, "default (18789)"]);
  });

  it("follows --profile to ~/.openclaw-NAME and keeps the unprofiled dir as its own install", async () => {
    const root = loadFixture("openclaw-good");
    edit(root, UNIT, (s) =>
      s
        .replace(' "OPENCLAW_STATE_DIR=/home/openclaw/.openclaw"', "")
        .replace("gateway run", "--profile work gateway run"),
    );
    const oc = await discover(root);
    expect(oc.installs.map((i) => [i.stateDir, i.unit?.name ?? null, i.stateDirExists])).toEqual([
      ["/home/openclaw/.openclaw", null, true],
      ["/home/openclaw/.openclaw-work", "openclaw-gateway.service", false],
    ]);
  });

  it("takes the token from the environment file by length only, and redacts it", async () => {
    const root = loadFixture("openclaw-good");
    edit(root, "etc/openclaw/gateway.env", (s) => s + 'OPENCLAW_GATEWAY_TOKEN="short-secret-value"\n');
    const i = (await discover(root)).installs[0]!;
    expect(i.auth).toMatchObject({
      mode: "token",
      tokenLength: 18,
      source: "/etc/openclaw/gateway.env:5 OPENCLAW_GATEWAY_TOKEN",
    });
    expect(JSON.stringify(i)).not.toContain("short-secret-value");
    expect(i.unit?.environment.OPENCLAW_GATEWAY_TOKEN).toBe("<redacted, 18 chars>");
  });

  it("reads a user unit left by openclaw gateway install, with its drop-in", async () => {
    const root = loadFixture("openclaw-careless");
    const dropIn = path.join(root, "root/.config/systemd/user/openclaw-gateway.service.d");
    mkdirSync(dropIn);
    writeFileSync(path.join(dropIn, "env.conf"), "[Service]\nEnvironment=OPENCLAW_GATEWAY_PORT=19001\n");
    const oc = await discover(root);
    const user = oc.units.find((u) => u.scope === "user")!;
    expect(user).toMatchObject({ owner: "root", runsAs: "root", enabled: false, flags: { port: 18789 } });
    expect(user.environmentAt.OPENCLAW_GATEWAY_PORT).toBe(
      "/root/.config/systemd/user/openclaw-gateway.service.d/env.conf:2",
    );
    // The system unit, not the user unit, runs the install.
    expect(oc.installs).toHaveLength(1);
    expect(oc.installs[0]!.unit?.scope).toBe("system");
    expect(oc.installs[0]!.bind).toBe("lan");
  });
});
