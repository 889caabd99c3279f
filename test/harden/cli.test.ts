import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import type { HardenReport } from "../../src/harden/harden.js";
import { runCommand } from "../../src/host/host.js";
import { classicGuide } from "./guide.js";
import { snapshot, tempDir } from "./tree.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../bin/clawguard.js");
const cli = (args: string[]) => runCommand([process.execPath, BIN, ...args], { timeoutMs: 60_000 });
// Each run starts a Node process; on a loaded two-core machine that takes seconds.
const SLOW = 90_000;

describe("clawguard harden, rollback and cloud-init", () => {
  it(
    "prints a plan with diffs and its JSON twin, applies it, lists the run and rolls it back",
    async () => {
      const root = classicGuide();
      const state = tempDir("state");
      const before = snapshot(root);
      const text = await cli(["harden", "--root", root, "--skip", "user"]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/Plan: \d+ changes/);
      expect(text.stdout).toContain("+tmpfs /tmp tmpfs rw,noexec,nosuid,nodev");
      expect(text.stdout).toContain("ufw allow 2222/tcp");
      const json = await cli(["harden", "--root", root, "--skip", "user", "--json"]);
      const report = JSON.parse(json.stdout) as HardenReport;
      expect(report.schema).toBe("clawguard.harden/v1");
      expect(report.applied).toBe(false);
      expect(
        report.changes.find((c) => c.change.kind === "file" && c.change.path === "/etc/fstab")?.fixes,
      ).toEqual(["tmp.persistent_options"]);
      expect(snapshot(root)).toEqual(before);

      const applied = await cli([
        "harden",
        "--root",
        root,
        "--skip",
        "user",
        "--apply",
        "--state-dir",
        state,
      ]);
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      expect(applied.stdout).toMatch(/Applied \d+ changes \(run (\S+); undo with: clawguard rollback \1\)/);
      expect(applied.stdout).toMatch(/after: +\d+ pass/);

      const list = JSON.parse(
        (await cli(["rollback", "--list", "--json", "--root", root, "--state-dir", state])).stdout,
      ) as {
        runs: Array<{ status: string; rolledBack: boolean }>;
      };
      expect(list.runs).toHaveLength(1);
      expect(list.runs[0]).toMatchObject({ status: "ok", rolledBack: false });

      const back = await cli(["rollback", "--root", root, "--state-dir", state]);
      expect(back.code, back.stdout + back.stderr).toBe(0);
      expect(back.stdout).toMatch(/Rolled back run \S+: \d+ changes undone/);
      expect(snapshot(root)).toEqual(before);
    },
    SLOW,
  );

  it(
    "refuses a profile that opens the gateway port, or has an unknown key, naming where",
    async () => {
      const open = await cli(["harden", "--root", classicGuide(), "--port", "80", "18789"]);
      expect(open.code).toBe(2);
      expect(open.stderr).toContain("--port: the gateway port may never be opened in the firewall");
      const file = path.join(tempDir("profile"), "profile.yaml");
      writeFileSync(file, "user: openclaw\nwebsite: true\n");
      const bad = await cli(["harden", "--root", classicGuide(), "--profile", file]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(`${file}:2: website: unknown key "website"`);
    },
    SLOW,
  );

  it(
    "prints cloud-init user-data that carries the profile",
    async () => {
      const file = path.join(tempDir("profile"), "profile.yaml");
      writeFileSync(file, "user: agent\nports: [443]\n");
      const r = await cli([
        "cloud-init",
        "--package",
        "https://files.example/clawguard-0.1.0.tgz",
        "--profile",
        file,
        "--www",
        "--shield",
        "10.9.0.1:3128",
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.startsWith("#cloud-config\n")).toBe(true);
      const doc = parse(r.stdout) as { write_files: Array<{ content: string }> };
      expect(parse(doc.write_files[0]!.content)).toMatchObject({
        user: "agent",
        ports: [443],
        www: true,
        shield: "10.9.0.1:3128",
      });
    },
    SLOW,
  );
});
