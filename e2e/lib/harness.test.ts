import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { cmd, Container, isRoot, sshFrom } from "./index.js";

// The other e2e tests trust this harness to give them a real, isolated, booted Debian 12 and
// to leave nothing behind; these tests hold it to that.
describe.skipIf(!isRoot)("e2e harness: a booted Debian 12 under systemd-nspawn", () => {
  let ct: Container | undefined;
  const get = (): Container => {
    if (!ct) throw new Error("container did not boot");
    return ct;
  };
  afterAll(async () => {
    await ct?.destroy();
  });

  it("boots Debian 12 with systemd as PID 1 in its own network namespace", async () => {
    ct = await Container.boot({ tag: "harness" });
    const c = get();
    expect((await c.exec("cat /proc/1/comm")).stdout.trim()).toBe("systemd");
    expect((await c.exec(". /etc/os-release && echo $VERSION_ID")).stdout.trim()).toBe("12");
    const addrs = (await c.exec(["ip", "-o", "-4", "addr", "show", "dev", "eth0"])).stdout;
    expect(addrs).toContain(`inet ${c.address}/30`);
    // The machine's own interfaces must not be visible inside.
    const links = (await c.exec(["ip", "-o", "link"])).stdout;
    expect(
      links
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(":")[1]?.trim().replace(/@.*/, "")),
    ).toEqual(["lo", "eth0"]);
  });

  it("passes stdin through and reports exit codes of commands inside", async () => {
    const r = await get().exec("tr a-z A-Z; exit 3", { input: "hello\n", check: false });
    expect(r).toMatchObject({ code: 3, stdout: "HELLO\n" });
  });

  it("installs packages offline from the pre-downloaded cache", async () => {
    const c = get();
    await c.aptInstall("nftables");
    expect((await c.exec(["nft", "list", "ruleset"])).code).toBe(0);
  });

  it("reaches sshd over the veth with the authorized key, and is denied without it", async () => {
    const c = get();
    const ok = await sshFrom(c.net.peerNs, c, "id -un; hostname");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.split("\n")[0]).toBe("root");
    const denied = await sshFrom(c.net.peerNs, c, "true", { identity: null });
    expect(denied.code).toBe(255);
    expect(denied.stderr).toMatch(/Permission denied/);
  });

  it("survives a reboot from inside, keeping its disk and its network", async () => {
    const c = get();
    await c.exec("echo kept > /root/marker; echo gone > /run/marker");
    const initBefore = c.pid;
    await c.reboot();
    expect(c.pid).not.toBe(initBefore);
    expect((await c.exec("cat /root/marker")).stdout).toBe("kept\n");
    // /run is a fresh tmpfs on every boot: its marker vanishing shows a real reboot.
    expect((await c.exec("test -e /run/marker", { check: false })).code).toBe(1);
    const ssh = await sshFrom(c.net.peerNs, c, "true");
    expect(ssh.code, ssh.stderr).toBe(0);
  });

  it("powers off cleanly and leaves nothing behind once destroyed", async () => {
    const c = get();
    expect(await c.poweroff()).toBe(0);
    expect(c.running).toBe(false);
    await c.destroy();
    expect(existsSync(c.dir)).toBe(false);
    const netns = (await cmd(["ip", "netns", "list"])).stdout;
    expect(netns).not.toContain(c.net.containerNs);
    expect(netns).not.toContain(c.net.peerNs);
    const mounts = (await cmd(["cat", "/proc/self/mountinfo"])).stdout;
    expect(mounts).not.toContain(c.root);
  });

  it("cleans up after a container that is still running", async () => {
    const c = await Container.boot({ tag: "harness" });
    const nspawnAlive = c.running;
    await c.destroy();
    expect(nspawnAlive).toBe(true);
    expect(c.running).toBe(false);
    expect(existsSync(c.dir)).toBe(false);
    expect((await cmd(["ip", "netns", "list"])).stdout).not.toContain(c.net.containerNs);
  });
});
