/**
 * SSH access grants against a real sshd: the agent's sshd runs in its own network namespace,
 * with its /etc/ssh replaced (in a private mount namespace) by the files `harden --ssh-ca
 * --ssh-ca-users deploy` plans, validated with the plan's own `sshd -t`, and /etc/passwd and
 * /etc/group by copies that add the accounts deploy and ops; the shield's CA signs with
 * ssh-keygen; a client in the peer namespace logs in with ssh. A granted certificate logs in as
 * the default account deploy, never as root; a grant --as ops logs in as ops only; one for
 * another agent's principal, one signed by another CA, an expired one and a revoked one do not;
 * a key in authorized_keys still does; a grant without forwarding opens no channel. The shield runs in
 * the peer namespace and serves its KRL; the agent runs the command of the KRL timer `harden
 * --ssh-ca --krl-from` installs, at the timer's interval, so a revocation is timed end to end.
 * The shield's own sshd, its forwarding kept by `ssh_access.jump`, is the way in: `ssh -J`
 * reaches the agent, and nothing but enrolled agents' SSH is forwarded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planSshCa } from "../src/harden/plan-ssh-ca.js";
import { parseKrlFetchState } from "../src/facts/krl.js";
import { parseGroup, parsePasswd } from "../src/facts/users.js";
import type { PlanInput } from "../src/harden/plan.js";
import { validateProfile } from "../src/harden/profile.js";
import { caDirOf, SshCa } from "../src/shield/ssh/ca.js";
import { JUMP_DROP_IN } from "../src/render/sshd-jump.js";
import { parseShieldConfig } from "../src/shield/config.js";
import { syncJumpHosts } from "../src/shield/ssh/jump.js";
import { generateKeyPair } from "../src/shield/wireguard/keys.js";
import { PROJECT_DIR } from "./lib/install.js";
import { createNetwork, destroyNetwork, netnsArgv, type TestNetwork } from "./lib/netns.js";
import { cmd, sleep } from "./lib/run.js";

const NAME = `cg-sshca-${process.pid}`;
const BIN = path.join(PROJECT_DIR, "bin/clawguard.js");
let net: TestNetwork;
let t: string;
let etc: string;
let sshd: ChildProcess | null = null;
let shield: ChildProcess | null = null;
let shieldSshd: ChildProcess | null = null;
let shieldEtc: string;
/** A second agent, a2, on its own link from the shield's namespace. */
const A2 = { ns: `${NAME}-a2`, addr: "10.77.8.2", peer: "10.77.8.1" };
let a2Sshd: ChildProcess | null = null;
let shieldCa: SshCa;
/** The KRL timer's command and interval, as harden plans them. */
let fetchArgv: string[] = [];
let fetchEveryMs = 0;
let timer: { stop: boolean; done: Promise<void> } | null = null;
/** Copies of /etc/passwd and /etc/group with the agents' accounts added, bound over the real ones. */
let accounts: string;

/** Run argv in the agent's namespaces: its network, and a mount namespace where /etc/ssh is ours. */
function inAgent(argv: string[]): string[] {
  return inNs(net.containerNs, etc, argv);
}

/** Run argv in a namespace of the test network with `dir` as its /etc/ssh, and the accounts added. */
function inNs(ns: string, dir: string, argv: string[]): string[] {
  const inner =
    `mount --bind "$0" /etc/ssh && mount --bind "$1/passwd" /etc/passwd && ` +
    `mount --bind "$1/group" /etc/group && shift && exec "$@"`;
  return netnsArgv(ns, [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    inner,
    dir,
    accounts,
    ...argv,
  ]);
}

/** The accounts' files: this machine's, with deploy and ops (shell /bin/sh, home /). */
function writeAccounts(): void {
  accounts = path.join(t, "accounts");
  mkdirSync(accounts);
  const passwd = readFileSync("/etc/passwd", "utf8").trimEnd().split("\n");
  const group = readFileSync("/etc/group", "utf8").trimEnd().split("\n");
  writeFileSync(
    path.join(accounts, "passwd"),
    [...passwd, "deploy:x:2901:2901::/:/bin/sh", "ops:x:2902:2902::/:/bin/sh", ""].join("\n"),
  );
  writeFileSync(path.join(accounts, "group"), [...group, "deploy:x:2901:", "ops:x:2902:", ""].join("\n"));
}

/** harden --ssh-ca's plan for this agent against the accounts above; deploy the default account. */
function caPlan(sshCa: Record<string, unknown>) {
  const users = {
    status: "ok",
    value: {
      users: parsePasswd(readFileSync(path.join(accounts, "passwd"), "utf8")),
      groups: parseGroup(readFileSync(path.join(accounts, "group"), "utf8")),
    },
  };
  return planSshCa({
    profile: validateProfile({ sshCa: { ...sshCa, users: ["deploy"] } }),
    facts: { files: new Map(), trees: new Map(), users },
  } as unknown as PlanInput);
}

/** sshd in the background in `ns` with `dir` as /etc/ssh; resolves once it listens. */
async function startSshd(ns: string, dir: string): Promise<ChildProcess> {
  await cmd(inNs(ns, dir, ["/usr/sbin/sshd", "-t", "-f", "/etc/ssh/sshd_config"]));
  const [file, ...args] = inNs(ns, dir, ["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"]);
  const child = spawn(file!, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (b: Buffer) => (log += b.toString()));
  for (let i = 0; i < 100 && !/Server listening on/.test(log); i++) await sleep(100);
  expect(log).toMatch(/Server listening/);
  return child;
}

/** A minimal sshd config: drop-ins first, keys from /etc/ssh/authorized_keys/USER. */
function sshdConfig(dir: string, listen: string): void {
  writeFileSync(
    path.join(dir, "sshd_config"),
    [
      "Include /etc/ssh/sshd_config.d/*.conf",
      `ListenAddress ${listen}`,
      "HostKey /etc/ssh/ssh_host_ed25519_key",
      "AuthorizedKeysFile /etc/ssh/authorized_keys/%u",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "PidFile none",
      "",
    ].join("\n"),
  );
}

const key = (name: string) => path.join(t, name);

async function keygen(name: string): Promise<void> {
  await cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key(name)]);
}

/** ssh from the peer namespace as `login` (default deploy); extra options and a remote command. */
function ssh(
  identity: string,
  cert: string | null,
  extra: string[] = [],
  remote = ["echo", "in-as-$(id -un)"],
  login = "deploy",
) {
  return cmd(
    netnsArgv(net.peerNs, [
      "ssh",
      "-F",
      "/dev/null",
      "-i",
      key(identity),
      ...(cert ? ["-o", `CertificateFile=${cert}`] : []),
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "ConnectTimeout=5",
      ...extra,
      `${login}@${net.containerAddr}`,
      ...remote,
    ]),
    { check: false, timeoutMs: 20_000 },
  );
}

async function grant(
  agent: string,
  durationMs: number,
  opts: { noForwarding?: boolean; user?: string } = {},
): Promise<string> {
  const { grant: g, certificate } = await shieldCa.sign({
    agent,
    publicKey: readFileSync(key("operator.pub"), "utf8"),
    durationMs,
    operator: "alice",
    ...opts,
  });
  const file = key(`grant-${g.serial}-cert.pub`);
  writeFileSync(file, certificate + "\n");
  return file;
}

beforeAll(async () => {
  t = mkdtempSync(path.join(tmpdir(), "clawguard-sshca-"));
  chmodSync(t, 0o755);
  writeAccounts();
  etc = path.join(t, "etc-ssh");
  mkdirSync(path.join(etc, "sshd_config.d"), { recursive: true });
  mkdirSync(path.join(etc, "authorized_keys"));
  for (const k of ["operator", "admin", "intruder-ca"]) await keygen(k);
  await cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path.join(etc, "ssh_host_ed25519_key")]);
  // The agent's existing admin key, as any server has one.
  writeFileSync(path.join(etc, "authorized_keys", "root"), readFileSync(key("admin.pub")));
  writeFileSync(
    path.join(etc, "sshd_config"),
    [
      "Include /etc/ssh/sshd_config.d/*.conf",
      "Port 22",
      "HostKey /etc/ssh/ssh_host_ed25519_key",
      "AuthorizedKeysFile /etc/ssh/authorized_keys/%u",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "PidFile none",
      "",
    ].join("\n"),
  );

  net = await createNetwork(NAME);
  // The shield, beside its CA, in the peer namespace: a1 is known by its address there.
  const shieldDir = path.join(t, "shield");
  mkdirSync(shieldDir);
  const shieldYaml = path.join(shieldDir, "shield.yaml");
  writeFileSync(
    shieldYaml,
    [
      `listen: ${net.peerAddr}:3128`,
      `log: { path: ${path.join(shieldDir, "shield.db")} }`,
      "agents:",
      `  - { id: a1, sources: [${net.containerAddr}/32] }`,
      `ssh_access: { krl_listen: "${net.peerAddr}:3129" }`,
      "",
    ].join("\n"),
  );
  shieldCa = new SshCa(caDirOf(shieldYaml));
  await shieldCa.init();

  // What harden --ssh-ca --agent-id a1 --krl-from URL writes, written under our /etc/ssh.
  const plan = caPlan({
    publicKey: await shieldCa.publicKey(),
    agent: "a1",
    krlUrl: `http://${net.peerAddr}:3129/ssh/krl`,
    launcher: [process.execPath, BIN],
  });
  const under = (p: string) => path.join(etc, path.relative("/etc/ssh", p));
  for (const c of plan) {
    if (c.kind === "mkdir" && c.path.startsWith("/etc/ssh/")) mkdirSync(under(c.path), { recursive: true });
    if (c.kind === "file" && c.path.startsWith("/etc/ssh/"))
      writeFileSync(under(c.path), c.content, { mode: c.mode });
    if (c.kind === "file" && c.path.endsWith(".service"))
      fetchArgv = /^ExecStart=(.*)$/m.exec(c.content)![1]!.split(" ");
    if (c.kind === "file" && c.path.endsWith(".timer"))
      fetchEveryMs = Number(/^OnUnitActiveSec=(\d+)s$/m.exec(c.content)![1]) * 1000;
  }
  expect(fetchArgv).toContain("fetch-krl");
  expect(fetchEveryMs).toBeGreaterThan(0);
  const check = plan.find((c) => c.kind === "command" && c.argv.join(" ") === "sshd -t");
  expect(check).toBeDefined();

  // The plan's own validation, in the agent's namespaces, before sshd starts.
  await cmd(inAgent(["/usr/sbin/sshd", "-t", "-f", "/etc/ssh/sshd_config"]));
  const [file, ...args] = inAgent(["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"]);
  sshd = spawn(file!, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  sshd.stderr?.on("data", (b: Buffer) => (log += b.toString()));
  for (let i = 0; i < 100 && !/Server listening on 0\.0\.0\.0/.test(log); i++)
    await new Promise((r) => setTimeout(r, 100));
  expect(log).toMatch(/Server listening/);

  // Agent a2: its own namespace and link to the shield's, its sshd trusting the CA for agent-a2.
  await cmd(["ip", "netns", "add", A2.ns]);
  await cmd([
    "ip",
    "-n",
    net.peerNs,
    "link",
    "add",
    "veth-a2",
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    A2.ns,
  ]);
  await cmd(["ip", "-n", net.peerNs, "addr", "add", `${A2.peer}/30`, "dev", "veth-a2"]);
  await cmd(["ip", "-n", net.peerNs, "link", "set", "veth-a2", "up"]);
  await cmd(["ip", "-n", A2.ns, "addr", "add", `${A2.addr}/30`, "dev", "eth0"]);
  await cmd(["ip", "-n", A2.ns, "link", "set", "eth0", "up"]);
  await cmd(["ip", "-n", A2.ns, "link", "set", "lo", "up"]);
  const a2Etc = path.join(t, "a2-etc-ssh");
  mkdirSync(path.join(a2Etc, "sshd_config.d"), { recursive: true });
  mkdirSync(path.join(a2Etc, "authorized_keys"));
  await cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path.join(a2Etc, "ssh_host_ed25519_key")]);
  sshdConfig(a2Etc, A2.addr);
  const a2Plan = caPlan({ publicKey: await shieldCa.publicKey(), agent: "a2" });
  for (const c of a2Plan) {
    const at = path.join(
      a2Etc,
      path.relative("/etc/ssh", c.kind === "file" || c.kind === "mkdir" ? c.path : "/"),
    );
    if (c.kind === "mkdir" && c.path.startsWith("/etc/ssh/")) mkdirSync(at, { recursive: true });
    if (c.kind === "file" && c.path.startsWith("/etc/ssh/")) writeFileSync(at, c.content, { mode: c.mode });
  }
  a2Sshd = await startSshd(A2.ns, a2Etc);

  // The shield's own sshd, its forwarding kept by clawguard to the enrolled agents' SSH.
  shieldEtc = path.join(t, "shield-etc-ssh");
  mkdirSync(path.join(shieldEtc, "sshd_config.d"), { recursive: true });
  mkdirSync(path.join(shieldEtc, "authorized_keys"));
  await cmd([
    "ssh-keygen",
    "-q",
    "-t",
    "ed25519",
    "-N",
    "",
    "-f",
    path.join(shieldEtc, "ssh_host_ed25519_key"),
  ]);
  writeFileSync(path.join(shieldEtc, "authorized_keys", "root"), readFileSync(key("admin.pub")));
  sshdConfig(shieldEtc, net.peerAddr);
  const enrolled = parseShieldConfig(
    [
      `listen: ${net.peerAddr}:3128`,
      "log: { path: x.db }",
      "wireguard: { interface: cg0, listen_port: 51820, address: [10.77.0.1/16], private_key_file: /k }",
      "ssh_access: { jump: true }",
      "agents:",
      `  - { id: a1, sources: [${net.containerAddr}/32], wireguard: { public_key: "${generateKeyPair().publicKey}" } }`,
      `  - { id: a2, sources: [${A2.addr}/32], wireguard: { public_key: "${generateKeyPair().publicKey}" } }`,
      "",
    ].join("\n"),
    path.join(t, "enrolled.yaml"),
  );
  const jump = await syncJumpHosts(
    enrolled,
    (argv) =>
      argv[0] === "sshd"
        ? cmd(inNs(net.peerNs, shieldEtc, ["/usr/sbin/sshd", "-t", "-f", "/etc/ssh/sshd_config"]), {
            check: false,
          })
        : // The shield's sshd starts below, reading the file as a reload would.
          Promise.resolve({ code: 0, stdout: "", stderr: "" }),
    path.join(shieldEtc, "sshd_config.d", path.basename(JUMP_DROP_IN)),
  );
  expect(jump?.applied, jump?.detail).toBe(true);
  shieldSshd = await startSshd(net.peerNs, shieldEtc);
  writeFileSync(
    key("jump.conf"),
    [
      "Host shield",
      `  HostName ${net.peerAddr}`,
      "  User root",
      `  IdentityFile ${key("admin")}`,
      "  IdentitiesOnly yes",
      "  BatchMode yes",
      "  StrictHostKeyChecking no",
      "  UserKnownHostsFile /dev/null",
      "  ConnectTimeout 5",
      "",
    ].join("\n"),
  );

  shield = spawn(
    "ip",
    ["netns", "exec", net.peerNs, process.execPath, BIN, "shield", "run", "--config", shieldYaml],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let shieldOut = "";
  shield.stdout?.on("data", (b: Buffer) => (shieldOut += b.toString()));
  shield.stderr?.on("data", (b: Buffer) => (shieldOut += b.toString()));
  for (let i = 0; i < 150 && !/listening on/.test(shieldOut); i++) await sleep(100);
  expect(shieldOut).toMatch(/listening on/);

  // The timer: its command in the agent's namespaces, at its interval, the first run at once.
  const state = path.join(t, "krl-fetch.json");
  const tick = { stop: false, done: Promise.resolve() };
  tick.done = (async () => {
    while (!tick.stop) {
      await cmd(inAgent([...fetchArgv, "--state", state]), { check: false, timeoutMs: 30_000 });
      for (let w = 0; w < fetchEveryMs && !tick.stop; w += 250) await sleep(250);
    }
  })();
  timer = tick;
  for (let i = 0; i < 100 && !existsSync(state); i++) await sleep(100);
  const first = parseKrlFetchState(readFileSync(state, "utf8"));
  expect(first?.error ?? null, "the first fetch").toBeNull();
}, 120_000);

afterAll(async () => {
  if (timer) {
    timer.stop = true;
    await timer.done;
  }
  if (shield?.pid) shield.kill("SIGTERM");
  if (shieldSshd?.pid) shieldSshd.kill("SIGTERM");
  if (a2Sshd?.pid) a2Sshd.kill("SIGTERM");
  await cmd(["ip", "netns", "del", A2.ns], { check: false });
  if (sshd?.pid) {
    sshd.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
  }
  if (net) await destroyNetwork(net);
  if (t) rmSync(t, { recursive: true, force: true });
});

describe("SSH access through the fleet's CA, on a real sshd", () => {
  it("lets the agent's existing admin key in, untouched", async () => {
    const r = await ssh("admin", null, [], undefined, "root");
    expect(r.stdout.trim(), r.stderr).toBe("in-as-root");
  });

  it("lets a granted certificate in as the default account, not as root, and refuses the key without it", async () => {
    const cert = await grant("a1", 5 * 60_000);
    const r = await ssh("operator", cert);
    expect(r.stdout.trim(), r.stderr).toBe("in-as-deploy");
    for (const login of ["root", "ops"]) {
      const refused = await ssh("operator", cert, [], undefined, login);
      expect(refused.code, login).not.toBe(0);
      expect(refused.stderr, login).toMatch(/Permission denied/);
    }
    const bare = await ssh("operator", null);
    expect(bare.code).not.toBe(0);
  });

  it("lets a grant --as ops in as ops only: not as deploy, not as root", async () => {
    const cert = await grant("a1", 5 * 60_000, { user: "ops" });
    const r = await ssh("operator", cert, [], undefined, "ops");
    expect(r.stdout.trim(), r.stderr).toBe("in-as-ops");
    for (const login of ["deploy", "root"]) {
      const refused = await ssh("operator", cert, [], undefined, login);
      expect(refused.code, login).not.toBe(0);
      expect(refused.stderr, login).toMatch(/Permission denied/);
    }
    // root has no principals file: even a grant --as root does not open it.
    const asRoot = await ssh(
      "operator",
      await grant("a1", 5 * 60_000, { user: "root" }),
      [],
      undefined,
      "root",
    );
    expect(asRoot.code).not.toBe(0);
    expect(asRoot.stderr).toMatch(/Permission denied/);
  });

  it("refuses a certificate for another agent's principal", async () => {
    const cert = await grant("a2", 5 * 60_000);
    const r = await ssh("operator", cert);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  it("refuses a certificate for the right principal signed by another CA", async () => {
    const cert = key("intruder-cert.pub");
    const argv = ["-q", "-s", key("intruder-ca"), "-I", "intruder", "-n", "agent-a1", "-V", "-1m:+1h"];
    await cmd(["ssh-keygen", ...argv, "-z", "1", key("operator.pub")]);
    // ssh-keygen names the certificate after the key: move it aside.
    writeFileSync(cert, readFileSync(key("operator-cert.pub")));
    rmSync(key("operator-cert.pub"));
    const r = await ssh("operator", cert);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  it("refuses a certificate past its validity", async () => {
    const cert = await grant("a1", 2_000);
    const fresh = await ssh("operator", cert);
    expect(fresh.stdout.trim(), fresh.stderr).toBe("in-as-deploy");
    await new Promise((r) => setTimeout(r, 3_500));
    const r = await ssh("operator", cert);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  it("refuses a revoked certificate within 60 s: the agent's timer fetches the shield's new KRL", async () => {
    const cert = await grant("a1", 5 * 60_000);
    const other = await grant("a1", 5 * 60_000);
    expect((await ssh("operator", cert)).code).toBe(0);
    const serial = Number(/grant-(\d+)-cert/.exec(cert)![1]);
    const krl = path.join(etc, "clawguard", "revoked.krl");
    const before = readFileSync(krl);
    const revokedAt = Date.now();
    await shieldCa.revoke(serial, "alice");
    let refused: Awaited<ReturnType<typeof ssh>> | null = null;
    while (Date.now() - revokedAt < 60_000) {
      const r = await ssh("operator", cert);
      if (r.code !== 0) {
        refused = r;
        break;
      }
      await sleep(1000);
    }
    expect(refused, "still let in 60 s after the revocation").not.toBeNull();
    expect(refused!.stderr).toMatch(/Permission denied/);
    // The list in place is the shield's, byte for byte, and not the one before.
    expect(readFileSync(krl).equals(readFileSync(shieldCa.krlFile))).toBe(true);
    expect(readFileSync(krl).equals(before)).toBe(false);
    // Other grants are not touched by that serial's revocation.
    expect((await ssh("operator", other)).code).toBe(0);
  }, 90_000);

  it("opens no forwarding for a grant without it, and does for one with it", async () => {
    const banner = (cert: string) =>
      ssh("operator", cert, ["-W", "127.0.0.1:22"], []).then((r) => ({
        ...r,
        ok: /^SSH-2\.0-/.test(r.stdout),
      }));
    const closed = await banner(await grant("a1", 5 * 60_000, { noForwarding: true }));
    expect(closed.ok).toBe(false);
    expect(closed.stderr).toMatch(/administratively prohibited|open failed/);
    const open = await banner(await grant("a1", 5 * 60_000));
    expect(open.ok, open.stderr).toBe(true);
  });

  /** ssh through the shield's sshd from the peer namespace, as ssh -J does (direct-tcpip). */
  const viaShield = (extra: string[], target: string[]) =>
    cmd(netnsArgv(net.peerNs, ["ssh", "-F", key("jump.conf"), ...extra, ...target]), {
      check: false,
      timeoutMs: 30_000,
    });

  it("logs a granted key in to the agent through the shield with ssh -J", async () => {
    const cert = await grant("a1", 5 * 60_000);
    const r = await viaShield(
      [
        "-J",
        "shield",
        "-i",
        key("operator"),
        "-o",
        `CertificateFile=${cert}`,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
      ],
      [`deploy@${net.containerAddr}`, "echo", "in-as-$(id -un)"],
    );
    expect(r.stdout.trim(), r.stderr).toBe("in-as-deploy");
  });

  it("refuses agent 1's certificate at agent 2 through the shield, which lets a2's own grant in", async () => {
    const login = (cert: string, to: string) =>
      viaShield(
        ["-J", "shield", "-i", key("operator"), "-o", `CertificateFile=${cert}`, "-o", "IdentitiesOnly=yes"],
        [
          "-o",
          "BatchMode=yes",
          "-o",
          "StrictHostKeyChecking=no",
          "-o",
          "UserKnownHostsFile=/dev/null",
        ].concat([`deploy@${to}`, "echo", "in-as-$(id -un)"]),
      );
    const a1 = await grant("a1", 5 * 60_000);
    expect((await login(a1, net.containerAddr)).stdout.trim()).toBe("in-as-deploy");
    const refused = await login(a1, A2.addr);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied/);
    // The way to agent 2 is open: its own principal's grant logs in.
    const a2 = await login(await grant("a2", 5 * 60_000), A2.addr);
    expect(a2.stdout.trim(), a2.stderr).toBe("in-as-deploy");
  });

  it("forwards through the shield to enrolled agents' SSH only", async () => {
    const banner = (to: string) =>
      viaShield(["-W", to], ["shield"]).then((r) => ({ ...r, ok: /^SSH-2\.0-/.test(r.stdout) }));
    const agent = await banner(`${net.containerAddr}:22`);
    expect(agent.ok, agent.stderr).toBe(true);
    // Another port of the agent, the shield's own proxy, an address no agent holds.
    for (const to of [`${net.containerAddr}:3128`, `${net.peerAddr}:3128`, "10.77.0.9:22"]) {
      const r = await banner(to);
      expect(r.ok, to).toBe(false);
      // Refused by PermitOpen itself, not by a connection that failed.
      expect(r.stderr, to).toMatch(/administratively prohibited/);
    }
  });
});
