import { describe, expect, it } from "vitest";
import type { Change } from "../../src/change/change.js";
import { planFor } from "../../src/harden/harden.js";
import { validateProfile } from "../../src/harden/profile.js";
import { LocalHost } from "../../src/host/host.js";
import { loadFixture } from "../helpers/fixture.js";

const files = (cs: Change[]) =>
  Object.fromEntries(cs.flatMap((c) => (c.kind === "file" ? [[c.path, c.content]] : [])));

describe("harden: the host controls beyond the checklist's basics", () => {
  it("adds the release's security suite as a deb822 source, keeping its components", async () => {
    const host = new LocalHost(loadFixture("updates-nosecurity"), { isRoot: false });
    const { plan } = await planFor(host, validateProfile({}));
    const f = files(plan.changes);
    expect(f["/etc/apt/sources.list.d/clawguard-security.sources"]).toContain(
      "URIs: http://security.debian.org/debian-security\nSuites: bookworm-security\nComponents: main contrib\n",
    );
    expect(f["/etc/needrestart/conf.d/50-clawguard.conf"]).toContain("$nrconf{restart} = 'a';");
    expect(plan.blocked.filter((b) => b.layer === "updates")).toEqual([]);
  });

  it("writes no source when it cannot tell the release, and says why", async () => {
    const host = new LocalHost(loadFixture("updates-fail"), { isRoot: false });
    const { plan } = await planFor(host, validateProfile({}));
    expect(Object.keys(files(plan.changes)).filter((p) => p.includes("sources.list.d"))).toEqual([]);
    expect(plan.blocked).toContainEqual({
      layer: "updates",
      reason: "the distribution or its release is unknown, so its security repository is too",
    });
  });

  it("writes the sysctl and core dump drop-ins, and applies the sysctls live only on the running system", async () => {
    const host = new LocalHost(loadFixture("kernel-fail"), { isRoot: false });
    const { plan } = await planFor(host, validateProfile({}));
    const f = files(plan.changes);
    expect(f["/etc/sysctl.d/60-clawguard.conf"]).toMatch(/^-net\.ipv4\.conf\.all\.rp_filter = 1$/m);
    expect(f["/etc/sysctl.d/60-clawguard.conf"]).toMatch(/^-fs\.suid_dumpable = 0$/m);
    expect(f["/etc/systemd/coredump.conf.d/60-clawguard.conf"]).toBe(
      "# Written by clawguard harden: a core dump of the gateway would hold its tokens and keys.\n[Coredump]\nStorage=none\nProcessSizeMax=0\n",
    );
    expect(f["/etc/security/limits.d/60-clawguard.conf"]).toMatch(/^\* hard core 0$/m);
    const mods = f["/etc/modprobe.d/60-clawguard.conf"]!;
    for (const m of ["dccp", "sctp", "rds", "tipc", "usb-storage", "firewire-core"]) {
      expect(mods).toMatch(new RegExp(`^install ${m} /bin/true$`, "m"));
      expect(mods).toMatch(new RegExp(`^blacklist ${m}$`, "m"));
    }
    // A copy of a system has no kernel to apply them to.
    expect(plan.deferred).toContainEqual(
      expect.objectContaining({ kind: "command", argv: ["sysctl", "-p", "/etc/sysctl.d/60-clawguard.conf"] }),
    );
  });
});
