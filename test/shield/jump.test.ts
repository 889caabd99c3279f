/**
 * ssh_access.jump: the shield's sshd forwards to enrolled agents' SSH only. The drop-in lists
 * every WireGuard agent's address (IPv6 in brackets), none at all as `PermitOpen none`; sshd -t
 * runs before the reload, and a config it refuses is put back as it was, unreloaded.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseShieldConfig } from "../../src/shield/config.js";
import { syncJumpHosts } from "../../src/shield/ssh/jump.js";
import { generateKeyPair } from "../../src/shield/wireguard/keys.js";

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
