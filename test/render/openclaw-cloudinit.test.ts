import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import JSON5 from "json5";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { renderCloudInit } from "../../src/render/cloud-init.js";
import { editOpenClawConfig } from "../../src/render/openclaw-config.js";
import { tempDir } from "../harden/tree.js";
import { haveTool } from "./tool.js";

describe("openclaw.json edits", () => {
  it("edits in place and keeps comments", () => {
    const text =
      '// my agent\n{\n  gateway: {\n    bind: "lan", // was for testing\n    port: 18789,\n  },\n}\n';
    const out = editOpenClawConfig(text, { loopback: true });
    expect(out.commentsLost).toBe(false);
    expect(out.content).toContain("// was for testing");
    expect(JSON5.parse(out.content)).toEqual({ gateway: { bind: "loopback", port: 18789 } });
  });

  it("adds bind where the gateway section lacks it, and a token where auth is none", () => {
    const text = '{\n  "gateway": {\n    "port": 18789,\n    "auth": { "mode": "none" }\n  }\n}\n';
    const out = editOpenClawConfig(text, { loopback: true, token: "t".repeat(64) });
    expect(out.commentsLost).toBe(false);
    expect(JSON.parse(out.content)).toEqual({
      gateway: { bind: "loopback", port: 18789, auth: { mode: "token", token: "t".repeat(64) } },
    });
  });

  it("rewrites what it cannot edit safely, and says when comments are lost", () => {
    const text = '/* two binds */ { gateway: { bind: "lan" }, other: { bind: "x" } }';
    const out = editOpenClawConfig(text, { loopback: true });
    expect(out.commentsLost).toBe(true);
    expect(JSON.parse(out.content)).toEqual({ gateway: { bind: "loopback" }, other: { bind: "x" } });
    const plain = editOpenClawConfig('{"gateway":{"bind":"lan"},"other":{"bind":"x"}}', { loopback: true });
    expect(plain.commentsLost).toBe(false);
  });
});

describe("cloud-init user-data", () => {
  const text = renderCloudInit({
    profileYaml: "user: openclaw\nports: [80, 443]\n",
    clawguard: "clawguard@0.1.0",
    nodeVersion: "24.11.1",
  });

  it("writes the profile and runs harden --apply with it at first boot", () => {
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    const doc = parse(text) as { write_files: Array<{ path: string; content: string }>; runcmd: string[][] };
    expect(doc.write_files[0]).toMatchObject({
      path: "/etc/clawguard/profile.yaml",
      content: "user: openclaw\nports: [80, 443]\n",
    });
    expect(doc.runcmd.at(-1)!.join(" ")).toContain(
      "clawguard harden --apply --profile /etc/clawguard/profile.yaml",
    );
    expect(doc.runcmd[1]).toContain("clawguard@0.1.0");
  });

  it.runIf(haveTool("cloud-init"))("passes cloud-init schema validation", () => {
    const file = path.join(tempDir("ci"), "user-data");
    writeFileSync(file, text);
    const r = spawnSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    writeFileSync(file, "#cloud-config\nruncmd: 5\n");
    expect(spawnSync("cloud-init", ["schema", "--config-file", file]).status).not.toBe(0);
  });
});
