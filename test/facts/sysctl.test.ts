import { describe, expect, it } from "vitest";
import { dropInOrder } from "../../src/facts/dropins.js";
import { parseMountTable } from "../../src/facts/mounts.js";
import { persistentValue, parseSysctlConf, readOnlyKeys, SYSCTL_DIRS } from "../../src/facts/sysctl.js";

describe("sysctl facts", () => {
  it("orders drop-ins by name across directories, /etc masking the same name elsewhere", () => {
    const order = dropInOrder(SYSCTL_DIRS, {
      "/usr/lib/sysctl.d": ["50-pid-max.conf", "60-x.conf", "README"],
      "/etc/sysctl.d": ["60-x.conf", "99-sysctl.conf"],
    });
    expect(order).toEqual([
      "/usr/lib/sysctl.d/50-pid-max.conf",
      "/etc/sysctl.d/60-x.conf",
      "/etc/sysctl.d/99-sysctl.conf",
    ]);
  });

  it("lets the last assignment win, globs included", () => {
    const a = [
      ...parseSysctlConf("net.ipv4.conf.all.rp_filter = 0\n", "/a"),
      ...parseSysctlConf("; comment\nnet/ipv4/conf/*/rp_filter=2\n", "/b"),
    ];
    expect(persistentValue({ assignments: a }, "net.ipv4.conf.all.rp_filter")).toEqual({
      key: "net.ipv4.conf.*.rp_filter",
      value: "2",
      source: "/b",
      line: 2,
    });
    expect(persistentValue({ assignments: a }, "net.ipv4.conf.all.forwarding")).toBeUndefined();
    expect(() => parseSysctlConf("kernel.sysrq\n", "/c")).toThrow(/expected "key = value"/);
  });

  it("finds keys under a read-only mount, the innermost mount deciding", () => {
    // What systemd-nspawn mounts with a private network: /proc/sys read-only, its net/ writable.
    const mounts = parseMountTable(
      "proc /proc proc rw,nosuid 0 0\nproc /proc/sys proc ro,nosuid 0 0\nproc /proc/sys/net proc rw,nosuid 0 0\n",
      "/proc/self/mounts",
    );
    expect(readOnlyKeys(mounts, ["kernel.kptr_restrict", "net.ipv4.tcp_syncookies"])).toEqual([
      "kernel.kptr_restrict",
    ]);
    expect(readOnlyKeys(mounts.slice(0, 1), ["kernel.kptr_restrict"])).toEqual([]);
  });
});
