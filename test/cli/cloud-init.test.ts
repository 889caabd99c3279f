/**
 * cloud-init renders user-data only for a package the new server can install: never a registry
 * name that does not exist there, never a path on the machine that rendered it.
 */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runCli } from "../helpers/run-cli.js";

const run = runCli;

describe("clawguard cloud-init --package", () => {
  it("is required, and the error says how to make a package the server can fetch", async () => {
    const r = await run(["cloud-init"]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain("--package");
    expect(r.err).toContain("npm pack");
  });

  it.each(["./clawguard-0.1.0.tgz", "/tmp/clawguard-0.1.0.tgz", "file:/tmp/x.tgz", "clawguard-0.1.0.tgz"])(
    "refuses %s, a path the new server does not have",
    async (spec) => {
      const r = await run(["cloud-init", "--package", spec]);
      expect(r.code).toBe(2);
      expect(r.err).toContain("path on this machine");
    },
  );

  it.each(["https://files.example/clawguard-0.1.0.tgz", "clawguard@0.2.0"])(
    "installs exactly %s at first boot",
    async (spec) => {
      const r = await run(["cloud-init", "--package", spec]);
      expect(r.code, r.err).toBe(0);
      const doc = parse(r.out) as { runcmd: string[][] };
      const npm = doc.runcmd.find((c) => c[0]?.endsWith("/npm"));
      expect(npm?.at(-1)).toBe(spec);
    },
  );
});
