import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { auditHost } from "../../src/fleet/audit.js";
import { context, FakeConnector, ROOT_PROBE, target } from "./fake-hosts.js";
import { finding, report } from "./reports-fixture.js";

const dir = mkdtempSync(path.join(tmpdir(), "clawguard-remote-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bundleFile = path.join(dir, "clawguard-0.1.0.tgz");
writeFileSync(bundleFile, "the bundle's bytes");
const bundle = async () => ({ file: bundleFile, version: "0.1.0", bytes: 18 });
const audit = () => ({ code: 0, stdout: report([finding("ssh.root_login", "pass")]) });

describe("clawguard on a host", () => {
  it("uses the one installed there when its version speaks ours", async () => {
    const f = new FakeConnector({ a: { clawguard: audit } });
    const h = await auditHost(target("a"), context(f, { bundle }), {});
    expect(h.result?.clawguard).toEqual({
      via: "installed",
      version: "0.1.0",
      path: "/usr/local/bin/clawguard",
      become: false,
    });
    expect(f.calls.map((c) => c.argv[4])).toEqual(["/usr/local/bin/clawguard"]);
  });

  it("copies this one over when the installed one is of another version, and removes the copy", async () => {
    const probe = ROOT_PROBE.replace("clawguard_version=0.1.0", "clawguard_version=0.2.4").replace(
      "uid=0\n",
      "uid=1000\nbecome=sudo\n",
    );
    const f = new FakeConnector({ a: { probe, clawguard: audit } });
    const h = await auditHost(target("a"), context(f, { bundle }), {});
    expect(h.status).toBe("ok");
    expect(h.result?.clawguard).toEqual({
      via: "copied",
      version: "0.1.0",
      path: "/var/tmp/clawguard-fleet.AbCd1234/bin/clawguard.js",
      note: "clawguard 0.2.4 at /usr/local/bin/clawguard does not speak 0.1.0",
      become: true,
    });
    const [unpack, run, remove] = f.calls.map((c) => c.argv);
    expect(unpack!.slice(0, 4)).toEqual(["sudo", "-n", "sh", "-c"]);
    expect(run!.slice(0, 8)).toEqual([
      "sudo",
      "-n",
      "timeout",
      "-k",
      "5",
      "10",
      "/usr/bin/node",
      "/var/tmp/clawguard-fleet.AbCd1234/bin/clawguard.js",
    ]);
    expect(remove).toEqual(["sudo", "-n", "rm", "-rf", "--", "/var/tmp/clawguard-fleet.AbCd1234"]);
  });

  it("a host without a node to run the copy says so", async () => {
    const probe = "uid=0\nnode=/usr/bin/node\nnode_version=18.19.0\ntar=yes\nroot_uid=0\n";
    const f = new FakeConnector({ a: { probe } });
    const h = await auditHost(target("a"), context(f, { bundle }), {});
    expect(h.status).toBe("error");
    expect(h.error).toMatchObject({
      code: "CG_REMOTE_UNSUPPORTED",
      message: "/usr/bin/node is Node.js 18.19.0; clawguard needs 20 or later",
    });
    expect(f.calls).toEqual([]);
  });

  it("a sudo that wants a password is the host's error, asked without a prompt", async () => {
    const probe = "uid=1000\nbecome=refused\nbecome_error=sudo: a password is required\n";
    const f = new FakeConnector({ a: { probe } });
    const h = await auditHost(target("a"), context(f, { bundle }), {});
    expect(h.error).toMatchObject({
      code: "CG_BECOME_FAILED",
      message: expect.stringMatching(/a password is required/),
    });
  });
});
