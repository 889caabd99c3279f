/**
 * Time-limited SSH access in the WireGuard fleet lab (e2e/wireguard-fleet.test.ts): the
 * operator sits on the internet, reaches agents through the shield's public sshd with `ssh -J`
 * (its forwarding kept to enrolled agents' port 22 by `ssh_access.jump`), with certificates
 * from `shield grant`. The agents trust the CA from their join code, and their
 * clawguard-krl-fetch.timer, under systemd, fetches the KRL over the tunnel. `sshAccessTests`
 * registers its tests where the fleet file calls it, on the containers that file booted.
 */
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseKrlFetchState } from "../../src/facts/krl.js";
import { KRL_FETCH_TIMER } from "../../src/render/krl-fetch-unit.js";
import { SSH_CA_KRL } from "../../src/render/sshd-ca.js";
import type { Container } from "./container.js";
import { cmd, sleep, type CmdResult } from "./run.js";
import type { Topology } from "./topology.js";

export interface FleetSshLab {
  topo: Topology;
  /** Where the operator's keys and certificates are kept, on the host. */
  work: string;
  /** shield.yaml's path inside the shield. */
  config: string;
  shieldPublic: string;
  shield: Container;
  agent1: Container;
  agent2: Container;
  /** The agents' tunnel addresses, as enrolment gave them. */
  agent1Tunnel: string;
  agent2Tunnel: string;
}

interface GrantOut {
  grant: { serial: number; validBefore: number };
}

const KEYGEN = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""];

export function sshAccessTests(lab: () => FleetSshLab): void {
  describe("SSH access through the shield, with the fleet's CA", () => {
    let l: FleetSshLab;
    let n = 0;
    const file = (name: string) => path.join(l.work, name);
    /** A background wait: the first moment a revoked certificate is refused, or the reason it is not. */
    let revocation: Promise<{ revokedAt: number; refused: CmdResult | null; at: number }> | null = null;

    beforeAll(async () => {
      l = lab();
      await cmd([...KEYGEN, "-C", "operator", "-f", file("operator")]);
      await cmd([...KEYGEN, "-C", "intruder-ca", "-f", file("intruder-ca")]);
      writeFileSync(path.join(l.shield.root, "root/operator.pub"), readFileSync(file("operator.pub")));
      // The operator's way in to the shield itself: the key that server was set up with.
      writeFileSync(
        file("jump.conf"),
        [
          "Host shield",
          `  HostName ${l.shieldPublic}`,
          "  User root",
          `  IdentityFile ${l.shield.sshKey}`,
          "  IdentitiesOnly yes",
          "  BatchMode yes",
          "  StrictHostKeyChecking no",
          "  UserKnownHostsFile /dev/null",
          "  ConnectTimeout 5",
          "",
        ].join("\n"),
      );
      chmodSync(file("jump.conf"), 0o600);
    });

    /** ssh from the internet, through the shield, to `to` (a tunnel address) as `user`. */
    const viaShield = (
      identity: string,
      cert: string | null,
      to: string,
      remote: string[] = ["echo", "in-as-$(id -un)"],
      extra: string[] = [],
      user = "deploy",
    ) =>
      l.topo.in(
        [
          "ssh",
          "-F",
          file("jump.conf"),
          "-J",
          "shield",
          "-i",
          identity,
          ...(cert ? ["-o", `CertificateFile=${cert}`] : []),
          ...["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"],
          ...["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"],
          ...extra,
          `${user}@${to}`,
          ...remote,
        ],
        30_000,
      );
    const loggedIn = async (r: Promise<CmdResult>, user = "deploy") => {
      const res = await r;
      expect(res.stdout.trim(), res.stderr).toBe(`in-as-${user}`);
    };
    const refused = async (r: Promise<CmdResult>) => {
      const res = await r;
      expect(res.code, res.stdout).not.toBe(0);
      // Refused by the agent's sshd, not a connection that failed on the way.
      expect(res.stderr).toMatch(/Permission denied \(publickey/);
    };

    /** `shield grant` on the shield, as an operator runs it; the certificate copied to the operator. */
    async function grant(agent: string, duration: string, more: string[] = []) {
      const name = `grant-${++n}-cert.pub`;
      const r = await l.shield.exec(
        [
          "clawguard",
          "shield",
          "grant",
          agent,
          "--key",
          "/root/operator.pub",
          "--for",
          duration,
          "--config",
          l.config,
          "--out",
          `/root/${name}`,
          "--json",
          ...more,
        ],
        { check: false },
      );
      expect(r.code, r.stderr).toBe(0);
      writeFileSync(file(name), readFileSync(path.join(l.shield.root, "root", name)));
      return { cert: file(name), ...(JSON.parse(r.stdout) as GrantOut).grant };
    }

    it("fetches the KRL over the tunnel with the agents' systemd timer, and keeps the agents' admin keys working", async () => {
      for (const c of [l.agent1, l.agent2]) {
        const active = await c.exec(["systemctl", "is-active", KRL_FETCH_TIMER], { check: false });
        expect(active.stdout.trim(), c.name).toBe("active");
        // The timer's own run got the shield's list: through the tunnel, past both tables.
        const state = parseKrlFetchState(
          readFileSync(path.join(c.root, "var/lib/clawguard/krl-fetch.json"), "utf8"),
        );
        expect(state?.error ?? null, c.name).toBeNull();
        expect(state?.lastSuccess, c.name).toBeGreaterThan(Date.now() - 60_000);
        expect(state?.url, c.name).toMatch(/^http:\/\/10\.77\.0\.1:3129\//);
      }
      const asRoot = (c: typeof l.agent1, to: string) =>
        loggedIn(viaShield(c.sshKey, null, to, undefined, [], "root"), "root");
      await asRoot(l.agent1, l.agent1Tunnel);
      await asRoot(l.agent2, l.agent2Tunnel);
      // The operator's key without a certificate is nobody's.
      await refused(viaShield(file("operator"), null, l.agent1Tunnel));
    });

    it("logs a granted key in to agent 1 through the shield with ssh -J; agent 2 refuses that certificate", async () => {
      const g = await grant("agent1", "10m");
      await loggedIn(viaShield(file("operator"), g.cert, l.agent1Tunnel));
      await refused(viaShield(file("operator"), g.cert, l.agent2Tunnel));
      // It opens the agent's login account, not root's.
      await refused(viaShield(file("operator"), g.cert, l.agent1Tunnel, undefined, [], "root"));
      // The way to agent 2 is open: its own principal's grant logs in.
      await loggedIn(viaShield(file("operator"), (await grant("agent2", "10m")).cert, l.agent2Tunnel));
    });

    it("starts revoking a grant: the certificate works until `shield revoke-grant`, other grants go on", async () => {
      const revoked = await grant("agent1", "10m");
      await loggedIn(viaShield(file("operator"), revoked.cert, l.agent1Tunnel));
      const before = readFileSync(path.join(l.agent1.root, SSH_CA_KRL.slice(1)));
      const r = await l.shield.exec(
        ["clawguard", "shield", "revoke-grant", String(revoked.serial), "--config", l.config],
        { check: false },
      );
      expect(r.code, r.stderr).toBe(0);
      const revokedAt = Date.now();
      // Waited for while the next checks run; the last one reads the outcome.
      revocation = (async () => {
        for (;;) {
          const res = await viaShield(file("operator"), revoked.cert, l.agent1Tunnel);
          if (res.code !== 0 || Date.now() - revokedAt > 60_000)
            return { revokedAt, refused: res.code !== 0 ? res : null, at: Date.now() };
          await sleep(1000);
        }
      })();
      revocation.catch(() => undefined);
      expect(before.length).toBeGreaterThan(0);
    });

    it("refuses a certificate for agent 1's principal signed by another CA", async () => {
      const cert = file("intruder-cert.pub");
      await cmd(["cp", file("operator.pub"), file("intruder.pub")]);
      await cmd([
        "ssh-keygen",
        "-q",
        "-s",
        file("intruder-ca"),
        ...["-I", "intruder", "-n", "agent-agent1", "-V", "-1m:+1h", "-z", "1"],
        file("intruder.pub"),
      ]);
      writeFileSync(cert, readFileSync(file("intruder-cert.pub")));
      await refused(viaShield(file("operator"), cert, l.agent1Tunnel));
    });

    it("refuses a certificate past its validity", async () => {
      const g = await grant("agent1", "5s");
      await loggedIn(viaShield(file("operator"), g.cert, l.agent1Tunnel));
      await sleep(Math.max(0, g.validBefore - Date.now()) + 1500);
      await refused(viaShield(file("operator"), g.cert, l.agent1Tunnel));
    });

    it("opens no forwarding for a grant with --no-forwarding, and does for one without", async () => {
      const banner = async (cert: string) => {
        const r = await viaShield(file("operator"), cert, l.agent1Tunnel, [], ["-W", "127.0.0.1:22"]);
        return { ...r, ok: /^SSH-2\.0-/.test(r.stdout) };
      };
      const closed = await banner((await grant("agent1", "10m", ["--no-forwarding"])).cert);
      expect(closed.ok).toBe(false);
      expect(closed.stderr).toMatch(/administratively prohibited|open failed/);
      const open = await banner((await grant("agent1", "10m")).cert);
      expect(open.ok, open.stderr).toBe(true);
      // The shield itself forwards to agents' SSH only: not to the internet.
      const out = await l.topo.in(
        ["ssh", "-F", file("jump.conf"), "-W", "198.51.100.80:80", "shield"],
        30_000,
      );
      expect(out.stderr).toMatch(/administratively prohibited/);
    });

    it("refuses the revoked certificate within 60 s: agent 1's timer fetched the shield's new KRL", async () => {
      expect(revocation, "the revocation was started").not.toBeNull();
      const { revokedAt, refused: r, at } = await revocation!;
      console.log(`[wireguard-fleet] revoked certificate refused ${at - revokedAt} ms after revoke-grant`);
      expect(r, "still let in 60 s after the revocation").not.toBeNull();
      expect(r!.stderr).toMatch(/Permission denied \(publickey/);
      expect(at - revokedAt).toBeLessThan(60_000);
      // The list in place is the shield's, byte for byte.
      const shieldKrl = readFileSync(path.join(l.shield.root, path.dirname(l.config).slice(1), "ssh-ca/krl"));
      expect(readFileSync(path.join(l.agent1.root, SSH_CA_KRL.slice(1))).equals(shieldKrl)).toBe(true);
      // Another grant of the same key is not touched by that serial's revocation.
      await loggedIn(viaShield(file("operator"), (await grant("agent1", "10m")).cert, l.agent1Tunnel));
      const listed = await l.shield.exec(["clawguard", "shield", "grants", "--config", l.config, "--json"], {
        check: false,
      });
      const states = (JSON.parse(listed.stdout) as { grants: Array<{ state: string }> }).grants.map(
        (g) => g.state,
      );
      expect(states).toEqual(expect.arrayContaining(["revoked", "expired", "active"]));
    }, 90_000);
  });
}
