/**
 * ssh_access.jump: the shield's sshd forwards to enrolled agents' SSH only. The drop-in lists
 * every WireGuard agent's address (IPv6 in brackets), none at all as `PermitOpen none`; sshd -t
 * runs before the reload, and a config it refuses is put back as it was, unreloaded. Root's sync
 * daemon keeps it in step with shield.yaml on each pass, whoever edited the file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../src/shield/config.js";
import { syncJumpHosts } from "../../src/shield/ssh/jump.js";
import { generateKeyPair } from "../../src/shield/wireguard/keys.js";
import { applyOnce, describe as describeSync } from "../../src/shield/wireguard/sync.js";

const WG = `listen: 10.77.0.1:3128
log: { path: x.db }
wireguard:
  interface: cg0
  listen_port: 51820
  address: [10.77.0.1/16, fd77:77::1/64]
  private_key_file: /etc/clawguard/wireguard.key
`;
const agent = (id: string, sources: string) =>
  `  - id: ${id}\n    sources: [${sources}]\n    wireguard: { public_key: "${generateKeyPair().publicKey}" }\n`;
const cfgOf = (agents: string, jump = true) =>
  parseShieldConfig(`${WG}ssh_access: { jump: ${jump} }\nagents:\n${agents || "  []\n"}`, "/x/shield.yaml");

function recorder(failing: string | null = null) {
  const calls: string[] = [];
  return {
    calls,
    run: (argv: string[]) => {
      calls.push(argv.join(" "));
      const fail = argv.join(" ") === failing;
      return Promise.resolve({
        code: fail ? 255 : 0,
        stdout: "",
        stderr: fail ? "Bad configuration option" : "",
      });
    },
  };
}

describe("the shield's sshd as the way in (ssh_access.jump)", () => {
  const file = () => path.join(mkdtempSync(path.join(tmpdir(), "clawguard-jump-")), "05-clawguard-jump.conf");

  it("forwards to the enrolled agents' SSH ports only, checked by sshd -t before the reload", async () => {
    const f = file();
    const r = recorder();
    const out = await syncJumpHosts(
      cfgOf(agent("a1", "10.77.0.2/32, fd77:77::2/128") + agent("a2", "10.77.0.3/32")),
      r.run,
      f,
    );
    expect(out?.applied).toBe(true);
    const text = readFileSync(f, "utf8");
    expect(text).toMatch(/^PermitOpen 10\.77\.0\.2:22 \[fd77:77::2\]:22 10\.77\.0\.3:22$/m);
    expect(text).toMatch(/^AllowTcpForwarding local$/m);
    expect(r.calls).toEqual(["sshd -t", "systemctl reload ssh.service"]);
    // In step: nothing run again.
    await syncJumpHosts(
      cfgOf(agent("a1", "10.77.0.2/32, fd77:77::2/128") + agent("a2", "10.77.0.3/32")),
      r.run,
      f,
    );
    expect(r.calls).toHaveLength(2);
  });

  it("forwards nowhere once no agent is enrolled, and is not kept unless asked", async () => {
    const f = file();
    await syncJumpHosts(cfgOf(""), recorder().run, f);
    expect(readFileSync(f, "utf8")).toMatch(/^PermitOpen none$/m);
    expect(await syncJumpHosts(cfgOf(agent("a1", "10.77.0.2/32"), false), recorder().run, f)).toBeNull();
  });

  it("puts the file back and does not reload when sshd -t refuses the config", async () => {
    const f = file();
    writeFileSync(f, "# as it was\n");
    const r = recorder("sshd -t");
    const out = await syncJumpHosts(cfgOf(agent("a1", "10.77.0.2/32")), r.run, f);
    expect(out?.applied).toBe(false);
    expect(out?.detail).toMatch(/sshd -t refused.*Bad configuration option.*put back/);
    expect(readFileSync(f, "utf8")).toBe("# as it was\n");
    expect(r.calls).toEqual(["sshd -t"]);
  });
});

describe("the sync daemon keeps the jump host in step with shield.yaml", () => {
  it("adds and removes agents enrolled or revoked by anyone, and says so only when it changed", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "clawguard-jump-sync-"));
    const dropIn = path.join(dir, "05-clawguard-jump.conf");
    const keyFile = path.join(dir, "wireguard.key");
    const shield = generateKeyPair();
    writeFileSync(keyFile, shield.privateKey + "\n", { mode: 0o600 });
    const cfg = (agents: string) =>
      parseShieldConfig(
        WG.replace("/etc/clawguard/wireguard.key", keyFile) +
          `ssh_access: { jump: true }\nagents:\n${agents || "  []\n"}`,
        path.join(dir, "shield.yaml"),
      );
    const calls: string[] = [];
    // wg, nft and sshd as a host with the interface up answers them.
    const run = (argv: string[]) => {
      calls.push(argv[0] === "wg" || argv[0] === "nft" ? `${argv[0]} ${argv[1]}` : argv.join(" "));
      const dump = argv[0] === "wg" && argv[1] === "show";
      return Promise.resolve({
        code: 0,
        stdout: dump ? `${shield.privateKey}\t${shield.publicKey}\t51820\toff\n` : "",
        stderr: "",
      });
    };
    const scout = agent("scout", "10.77.0.2/32");
    const enrolled = await applyOnce(cfg(scout + agent("mate", "10.77.0.3/32")), null, run, dropIn);
    expect(readFileSync(dropIn, "utf8")).toMatch(/^PermitOpen 10\.77\.0\.2:22 10\.77\.0\.3:22$/m);
    expect(calls.filter((c) => !c.startsWith("wg") && !c.startsWith("nft"))).toEqual([
      "sshd -t",
      "systemctl reload ssh.service",
    ]);
    expect(describeSync(enrolled)).toMatch(/sshd: .*forwarding to 2 agent address\(es\) only/);

    // mate revoked (through the API or by hand): its address leaves the forwarding.
    calls.length = 0;
    const revoked = await applyOnce(cfg(scout), enrolled.table, run, dropIn);
    expect(readFileSync(dropIn, "utf8")).toMatch(/^PermitOpen 10\.77\.0\.2:22$/m);
    expect(calls).toContain("sshd -t");
    expect(calls.indexOf("wg syncconf")).toBeLessThan(calls.indexOf("sshd -t"));
    expect(describeSync(revoked)).toMatch(/sshd: .*1 agent address/);

    // In step: sshd is left alone and the pass has nothing to say about it.
    calls.length = 0;
    const again = await applyOnce(cfg(scout), revoked.table, run, dropIn);
    expect(calls).not.toContain("sshd -t");
    expect(describeSync(again)).not.toMatch(/sshd/);
    expect(again.jump).toMatchObject({ applied: true, changed: false });
  });
});
