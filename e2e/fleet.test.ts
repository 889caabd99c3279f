/**
 * clawguard fleet against real servers: five Debian 12 containers with sshd on one lab network,
 * reached from the lab's namespace with keys through the machine's own ssh client. web1, web2,
 * web3 and db1 start with a careless gateway; web2 has no clawguard and is reached as a sudo
 * user, so clawguard is copied there; db2's host key changes after it was recorded; ghost is an
 * address where nothing answers. The containers boot once, side by side, for every test here,
 * and the tests build on each other: two rollouts at once (one hardens web2 and then db1, the
 * other stops at a canary that fails), a host hanging, host keys and sudo refused, the fleet
 * audited, a regression found, and the rollout undone.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installGatewayStandIn, startCarelessGateway, waitListening } from "./lib/careless.js";
import { FleetLab } from "./lib/fleet-lab.js";
import {
  cmd,
  Container,
  generateKey,
  INSTALL_DIR,
  installClawguard,
  isRoot,
  PROJECT_DIR,
  type CmdResult,
} from "./lib/index.js";

const CONFIG = `{ gateway: { bind: "lan", port: 18789, auth: { mode: "none" } } }\n`;
const CORE = ["gateway", "user", "systemd", "firewall", "fail2ban", "tmp", "credentials", "updates"];
const NAMES = ["web1", "web2", "web3", "db1", "db2"];
const ROOT_ONLY = 'if (process.getuid() !== 0) { console.error("must run as root"); process.exit(1); }';

interface Finding {
  id: string;
  layer: string;
  severity: string;
  status: string;
}
interface HostRow {
  host: string;
  status: string;
  error?: { code: string; message: string };
  report?: { findings: Finding[] };
  clawguard?: { via: string; become: boolean };
  startedAt: string;
  durationMs: number;
}
interface Rollout {
  hosts: Array<{
    host: string;
    outcome?: string;
    apply?: { ok: boolean; why?: string; undo?: { done: boolean } };
    durationMs: number;
  }>;
  summary: Record<string, unknown>;
  run: string;
}

/** Failing (or unreadable) checks of high severity or worse in the layers harden fixes. */
const failingCore = (h: HostRow | undefined) =>
  (h?.report?.findings ?? []).filter(
    (f) =>
      CORE.includes(f.layer) &&
      (f.status === "fail" || f.status === "error") &&
      ["critical", "high"].includes(f.severity),
  );

describe.skipIf(!isRoot)("clawguard fleet over ssh, on five booted servers", () => {
  let lab: FleetLab;
  const ct: Record<string, Container> = {};
  const work = mkdtempSync(path.join(tmpdir(), "clawguard-fleet-e2e-"));
  const key = path.join(work, "id_ed25519");
  const inventory = path.join(work, "hosts.ini");
  const sshConfig = path.join(work, "ssh_config");
  const state = path.join(work, "fleet.db");
  let hardenRun = "";
  /** Server N's address on the lab network. */
  const addr = (name: string) => `10.79.${NAMES.indexOf(name) + 1}.2`;

  /** `clawguard fleet ARGS` from the lab, with this test's ssh config and run store. */
  const fleet = async (
    args: string[],
    opts: { timeoutMs?: number; sshConfig?: string; state?: string } = {},
  ): Promise<CmdResult> => {
    const started = Date.now();
    const remote = args[0] !== "diff" && args[0] !== "history";
    const r = await cmd(
      lab.argv([
        process.execPath,
        path.join(PROJECT_DIR, "bin/clawguard.js"),
        "fleet",
        ...args,
        ...(remote ? ["--ssh-config", opts.sshConfig ?? sshConfig] : []),
        "--state",
        opts.state ?? state,
      ]),
      { check: false, timeoutMs: opts.timeoutMs ?? 600_000, env: { ...process.env, NO_COLOR: "1" } },
    );
    console.log(
      `fleet ${args.slice(0, 6).join(" ")}: exit ${r.code} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return r;
  };
  const json = <T>(r: CmdResult): T => {
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new Error(`no JSON (exit ${r.code}):\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(0, 4000)}`);
    }
  };
  const byHost = (hosts: HostRow[]) => Object.fromEntries(hosts.map((h) => [h.host, h]));
  const took = (hosts: Array<{ host: string; durationMs: number }>) =>
    hosts.map((x) => `${x.host} ${(x.durationMs / 1000).toFixed(1)} s`).join(", ");
  /** Logins sshd on `c` has accepted so far. */
  const logins = async (c: Container) =>
    Number((await c.exec("journalctl -u ssh --no-pager -q | grep -c 'Accepted publickey' || true")).stdout);

  beforeAll(async () => {
    const started = Date.now();
    lab = await FleetLab.create("fleet");
    await generateKey(key);
    const pub = readFileSync(`${key}.pub`, "utf8");
    const nets = await Promise.all(NAMES.map((_, i) => lab.server(i + 1)));
    const booted = await Promise.all(
      NAMES.map((n, i) => Container.boot({ tag: `fl${n}`, network: nets[i] })),
    );
    NAMES.forEach((n, i) => (ct[n] = booted[i]!));

    const careless = async (c: Container) => {
      await installGatewayStandIn(c);
      await startCarelessGateway(c, CONFIG);
      await c.exec("chmod 644 /root/.openclaw/openclaw.json");
      await waitListening(c, "0.0.0.0:18789");
    };
    const rootLogin = async (c: Container) => {
      await installClawguard(c);
      writeFileSync(path.join(c.root, "root/.ssh/authorized_keys"), pub, { flag: "a" });
    };
    // The machine's name resolves as Debian's installer leaves it (127.0.1.1 in /etc/hosts);
    // without it sudo asks the lab's DNS, which is not there, and waits out the resolver.
    await Promise.all(booted.map((c) => c.exec(`echo "127.0.1.1 $(hostname)" >> /etc/hosts`)));
    await Promise.all([
      rootLogin(ct.web1!).then(() => careless(ct.web1!)),
      rootLogin(ct.web3!).then(async () => {
        // Linked as npm install -g links it: fleet reads its version from its package.json.
        await ct.web3!.exec(["ln", "-sf", `${INSTALL_DIR}/bin/clawguard.js`, "/usr/local/bin/clawguard"]);
        await careless(ct.web3!);
      }),
      rootLogin(ct.db1!).then(() => careless(ct.db1!)),
      rootLogin(ct.db2!),
      (async () => {
        // No clawguard here, only a node; the login is a user with sudo.
        const c = ct.web2!;
        await cmd(["sh", "-c", `cp "$(readlink -f "$(command -v node)")" ${c.root}/usr/local/bin/node`]);
        await c.exec(
          "useradd -m -s /bin/bash deploy && install -d -m 700 -o deploy -g deploy /home/deploy/.ssh && " +
            "echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy",
        );
        await c.exec(
          "cat > /home/deploy/.ssh/authorized_keys && chown deploy: /home/deploy/.ssh/authorized_keys",
          { input: pub },
        );
        await careless(c);
      })(),
    ]);

    const known = NAMES.map((n, i) => {
      const [type, b64] = readFileSync(
        path.join(booted[i]!.root, "etc/ssh/ssh_host_ed25519_key.pub"),
        "utf8",
      ).split(" ");
      return `${addr(n)} ${type} ${b64}`;
    });
    writeFileSync(path.join(work, "known_hosts"), known.join("\n") + "\n");
    writeFileSync(
      sshConfig,
      `UserKnownHostsFile ${work}/known_hosts\nGlobalKnownHostsFile /dev/null\nIdentitiesOnly yes\nLogLevel ERROR\n`,
    );
    // db2 is reinstalled: a new host key, which known_hosts does not have.
    await ct.db2!.exec("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A -q && systemctl restart ssh");
    writeFileSync(
      inventory,
      `# The lab's servers, as an operator would list them.
[web]
web1 ansible_host=${addr("web1")}
web2 ansible_host=${addr("web2")} ansible_user=deploy ansible_become=true
web3 ansible_host=${addr("web3")}

[db]
db1 ansible_host=${addr("db1")}
db2 ansible_host=${addr("db2")}

[gone]
ghost ansible_host=10.79.1.9

[all:vars]
ansible_user=root
ansible_ssh_private_key_file=${key}
`,
    );
    console.log(`five servers booted and set up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 900_000);

  afterAll(async () => {
    await Promise.all(Object.values(ct).map((c) => c.destroy()));
    await lab?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  it("rolls harden out one host at a time; a canary that fails its verify stops its rollout, put back, the host after it untouched", async () => {
    // Two rollouts at once, on hosts apart. web1's gateway refuses to run as anyone but root,
    // so under harden's unit it never becomes healthy.
    const web1 = ct.web1!;
    await web1.exec(["sed", "-i", `2i ${ROOT_ONLY}`, "/usr/local/bin/openclaw"]);
    await web1.exec("systemctl restart openclaw.service");
    await waitListening(web1, "0.0.0.0:18789");
    const common = ["harden", "-i", inventory, "--skip", "openclaw", "--apply", "--serial", "1", "--json"];
    const [good, canary] = await Promise.all([
      fleet([...common, "--limit", "web2,db1"], { timeoutMs: 900_000 }),
      fleet([...common, "--limit", "web1,web3", "--health-timeout", "20"], { timeoutMs: 900_000 }),
    ]);

    const doc = json<Rollout>(good);
    console.log(`rollout: ${took(doc.hosts)}`);
    expect(
      doc.hosts.map((h) => [h.host, h.outcome]),
      good.stderr,
    ).toEqual([
      ["web2", "changed"],
      ["db1", "changed"],
    ]);
    expect(good.code).toBe(0);
    hardenRun = doc.run;

    const stopped = json<Rollout>(canary);
    console.log(`canary rollout: ${took(stopped.hosts)}`);
    expect(canary.code, canary.stderr).toBe(1);
    expect(stopped.hosts.map((h) => [h.host, h.outcome])).toEqual([
      ["web1", "failed"],
      ["web3", "not-touched"],
    ]);
    expect(stopped.hosts[0]!.apply).toMatchObject({
      ok: false,
      why: expect.stringMatching(/healthz/),
      undo: { done: true },
    });
    expect(stopped.summary).toMatchObject({ failed: ["web1"], notTouched: ["web3"], stopped: true });
    // web1 is as it was (the gateway on every address as root, no firewall); web3 never ran harden.
    await waitListening(web1, "0.0.0.0:18789");
    expect((await web1.exec("ufw status")).stdout).toContain("Status: inactive");
    expect((await web1.exec("id openclaw", { check: false })).code).not.toBe(0);
    expect((await ct.web3!.exec("ls /var/lib/clawguard/runs 2>/dev/null | wc -l")).stdout.trim()).toBe("0");
    await web1.exec(["sed", "-i", "2d", "/usr/local/bin/openclaw"]);
    await web1.exec("systemctl restart openclaw.service");
  });

  it("a host that hangs is cut at --timeout and reported, and the others finish", async () => {
    // db1's clawguard never finishes an audit; web2's sshd takes connections and never answers.
    const wrapper = "/usr/local/bin/clawguard";
    const original = (await ct.db1!.exec(["cat", wrapper])).stdout;
    await ct.db1!.exec(["sh", "-c", `cat > ${wrapper}`], {
      input: `#!/bin/sh\n[ "$1" = --version ] && exec /usr/local/bin/node /opt/clawguard/bin/clawguard.js --version\nexec sleep 600\n`,
    });
    await ct.web2!.exec("systemctl kill --kill-whom=main -s STOP ssh.service");
    try {
      const r = await fleet([
        "audit",
        "-i",
        inventory,
        "--limit",
        "web:db1",
        "--skip",
        "openclaw",
        "--json",
        "--timeout",
        "16",
      ]);
      const doc = json<{ hosts: HostRow[] }>(r);
      console.log(`audit with hangs: ${took(doc.hosts)}`);
      const h = byHost(doc.hosts);
      expect(h.db1).toMatchObject({ status: "unreachable", error: { code: "CG_HOST_TIMEOUT" } });
      expect(h.db1!.error!.message).toMatch(/did not finish within 16 s: cut/);
      expect(h.web2).toMatchObject({ status: "unreachable", error: { code: "CG_SSH_UNREACHABLE" } });
      expect(h.web2!.error!.message).toMatch(/timed out/);
      expect([h.web1!.status, h.web3!.status]).toEqual(["ok", "ok"]);
      expect(r.code).toBe(1);
    } finally {
      await ct.web2!.exec("systemctl kill --kill-whom=main -s CONT ssh.service");
      await ct.db1!.exec(["sh", "-c", `cat > ${wrapper}`], { input: original });
    }
  });

  it("refuses a host key it does not know unless --accept-new-host-keys, which records it", async () => {
    const fresh = path.join(work, "known_hosts.fresh");
    const config = path.join(work, "ssh_config.fresh");
    writeFileSync(fresh, "");
    writeFileSync(
      config,
      `UserKnownHostsFile ${fresh}\nGlobalKnownHostsFile /dev/null\nIdentitiesOnly yes\nLogLevel ERROR\n`,
    );
    const opts = { sshConfig: config, state: path.join(work, "scratch.db") };
    const args = ["audit", "-i", inventory, "--limit", "web3", "--layer", "ssh", "--json"];
    const refused = byHost(json<{ hosts: HostRow[] }>(await fleet(args, opts)).hosts);
    expect(refused.web3).toMatchObject({ status: "error", error: { code: "CG_SSH_HOST_KEY_UNKNOWN" } });
    expect(readFileSync(fresh, "utf8")).toBe("");
    const accepted = byHost(
      json<{ hosts: HostRow[] }>(await fleet([...args, "--accept-new-host-keys"], opts)).hosts,
    );
    expect(accepted.web3!.status).toBe("ok");
    expect(readFileSync(fresh, "utf8")).toContain(addr("web3"));
  });

  it("a sudo that wants a password is that host's error, at once, not a prompt or a hang", async () => {
    await ct.web3!.exec(
      "useradd -m -s /bin/bash guest && install -d -m 700 -o guest -g guest /home/guest/.ssh && " +
        "echo 'guest ALL=(ALL) ALL' > /etc/sudoers.d/guest && chmod 440 /etc/sudoers.d/guest",
    );
    await ct.web3!.exec(
      "cat > /home/guest/.ssh/authorized_keys && chown guest: /home/guest/.ssh/authorized_keys",
      {
        input: readFileSync(`${key}.pub`, "utf8"),
      },
    );
    const inv = path.join(work, "guest.ini");
    writeFileSync(
      inv,
      `web3-guest ansible_host=${addr("web3")} ansible_user=guest ansible_become=true ansible_ssh_private_key_file=${key}\n`,
    );
    const r = await fleet(["audit", "-i", inv, "--json", "--timeout", "120"], {
      state: path.join(work, "scratch.db"),
    });
    expect(r.code).toBe(1);
    const [h] = json<{ hosts: HostRow[] }>(r).hosts;
    expect(h).toMatchObject({ host: "web3-guest", status: "error", error: { code: "CG_BECOME_FAILED" } });
    expect(h!.error!.message).toMatch(/sudo -n refused: .*password is required/);
  });

  it("audits every server at once: the careless and the hardened in full, the changed key and the dead address as errors", async () => {
    const html = path.join(work, "fleet.html");
    const before = await logins(ct.web1!);
    const r = await fleet(["audit", "-i", inventory, "--skip", "openclaw", "--json", "--html", html]);
    expect(r.code, r.stderr).toBe(1);
    const doc = json<{ hosts: HostRow[]; summary: Record<string, number> }>(r);
    console.log(`audit: ${took(doc.hosts)}`);
    const h = byHost(doc.hosts);
    expect(doc.hosts.map((x) => [x.host, x.status, x.error?.code])).toEqual([
      ["web1", "ok", undefined],
      ["web2", "ok", undefined],
      ["web3", "ok", undefined],
      ["db1", "ok", undefined],
      ["db2", "error", "CG_SSH_HOST_KEY_CHANGED"],
      ["ghost", "unreachable", "CG_SSH_UNREACHABLE"],
    ]);
    expect(h.db2!.error!.message).toMatch(/host key of 10\.79\.5\.2 has changed .*: refused/);
    for (const careless of [h.web1, h.web3])
      expect(failingCore(careless).map((f) => f.id)).toEqual(
        expect.arrayContaining(["gateway.bind_loopback", "user.dedicated", "credentials.world_readable"]),
      );
    // Hardened by the rollout: their core layers pass.
    expect(failingCore(h.web2)).toEqual([]);
    expect(failingCore(h.db1)).toEqual([]);
    expect(h.web1!.clawguard).toMatchObject({ via: "installed", become: false });
    expect(h.web3!.clawguard).toMatchObject({ via: "installed", version: "0.1.0" });
    expect(h.web2!.clawguard).toMatchObject({ via: "copied", become: true });
    // Everything on a host went over one connection: probe, audit and cleanup share its master.
    expect((await logins(ct.web1!)) - before).toBe(1);
    // The copy is gone from web2 once it is done.
    expect((await ct.web2!.exec("ls /var/tmp /tmp")).stdout).not.toMatch(/clawguard-fleet/);
    // Side by side: every audited host started before any of them finished.
    const ok = doc.hosts.filter((x) => x.status === "ok");
    const lastStart = Math.max(...ok.map((x) => Date.parse(x.startedAt)));
    const firstEnd = Math.min(...ok.map((x) => Date.parse(x.startedAt) + x.durationMs));
    expect(lastStart).toBeLessThan(firstEnd);
    expect(readFileSync(html, "utf8")).toMatch(/host key of 10\.79\.5\.2 has changed/);
  });

  it("fleet diff names the host made careless again, and the checks that regressed", async () => {
    await ct.db1!.exec("ufw --force disable && chmod 644 /home/openclaw/.openclaw/openclaw.json");
    await fleet(["audit", "-i", inventory, "--limit", "db1", "--skip", "openclaw", "--json"]);
    const d = await fleet(["diff", "--json"]);
    expect(d.code).toBe(1);
    const diff = json<{
      regressed: Array<{ host: string; checks: Array<{ id: string; from: string; to: string }> }>;
    }>(d);
    expect(diff.regressed.map((x) => x.host)).toEqual(["db1"]);
    const ids = diff.regressed[0]!.checks.map((c) => c.id);
    expect(ids).toEqual(expect.arrayContaining(["firewall.enabled", "credentials.world_readable"]));
    const text = await fleet(["diff"]);
    expect(text.stdout).toMatch(/regressed \(passed, now fails\):\n {2}db1\n/);
  });

  it("fleet rollback undoes the rollout host by host", async () => {
    expect(hardenRun).not.toBe("");
    const r = await fleet(["rollback", hardenRun, "--json"], { timeoutMs: 900_000 });
    expect(r.code, r.stderr).toBe(0);
    const doc = json<{ hosts: Array<{ host: string; result: { outcome: string }; durationMs: number }> }>(r);
    console.log(`rollback: ${took(doc.hosts)}`);
    expect(doc.hosts.map((h) => [h.host, h.result.outcome])).toEqual([
      ["web2", "undone"],
      ["db1", "undone"],
    ]);
    for (const c of [ct.web2!, ct.db1!]) {
      expect((await c.exec("ufw status")).stdout).toContain("Status: inactive");
      await waitListening(c, "0.0.0.0:18789");
    }
  });
});
