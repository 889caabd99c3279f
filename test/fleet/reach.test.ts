import { describe, expect, it } from "vitest";
import { parseInventory } from "../../src/fleet/inventory/load.js";
import { compatibleVersion, nodeProblem, parseProbe } from "../../src/fleet/remote/probe.js";
import { controlArgv, sshArgv, type SshSettings } from "../../src/fleet/ssh/argv.js";
import { classifySshFailure } from "../../src/fleet/ssh/classify.js";
import { targetFor } from "../../src/fleet/target.js";

const inv = parseInventory(
  `[web]
w1 ansible_host=10.0.0.1 ansible_port=2222 ansible_user=deploy ansible_ssh_private_key_file=~/.ssh/fleet
w2 ansible_ssh_common_args='-o ProxyJump=bastion -o "UserKnownHostsFile=/tmp/k h"'
w3 ansible_host="{{ lookup('env', 'X') }}"
w4 ansible_connection=local
w5 ansible_host=-oProxyCommand=evil
w6 ansible_port=ssh
w7 ansible_become=false
w8 ansible_become_method=su
`,
  "hosts.ini",
);

describe("how the inventory says to reach a host", () => {
  it("takes address, port, user, key and extra ssh arguments", () => {
    expect(targetFor(inv, "w1")).toEqual({
      name: "w1",
      address: "10.0.0.1",
      port: 2222,
      user: "deploy",
      identityFile: "~/.ssh/fleet",
      sshArgs: [],
      become: true,
    });
    expect(targetFor(inv, "w2").sshArgs).toEqual([
      "-o",
      "ProxyJump=bastion",
      "-o",
      "UserKnownHostsFile=/tmp/k h",
    ]);
    expect(targetFor(inv, "w7").become).toBe(false);
  });

  it.each([
    ["w3", /hosts\.ini:4: ansible_host: is a Jinja template/],
    ["w4", /hosts\.ini:5: ansible_connection: "local": clawguard fleet reaches hosts over ssh only/],
    ["w5", /ansible_host: "-oProxyCommand=evil" is not a host name or address/],
    ["w6", /ansible_port: "ssh" is not a port number/],
    ["w8", /ansible_become_method: "su": clawguard fleet becomes root with sudo -n only/],
  ])("%s cannot be used as it is, and says why", (host, problem) => {
    expect(targetFor(inv, host).problem).toMatch(problem);
  });
});

const settings: SshSettings = {
  configFile: "/etc/fleet/ssh_config",
  controlDir: "/tmp/cg-ssh-x",
  acceptNewHostKeys: false,
  connectTimeoutS: 10,
};

describe("the ssh command line", () => {
  it("sets fleet's options before anything the inventory adds, and ends options before the host", () => {
    const argv = sshArgv(
      { ...targetFor(inv, "w1"), sshArgs: ["-o", "StrictHostKeyChecking=no", "-A"] },
      settings,
      "sh -c 'id'",
    );
    const strict = argv.indexOf("StrictHostKeyChecking=yes");
    expect(strict).toBeGreaterThan(0);
    // ssh keeps the first value of an option: the inventory's "no" comes too late to count.
    expect(argv.indexOf("StrictHostKeyChecking=no")).toBeGreaterThan(strict);
    expect(argv.indexOf("ForwardAgent=no")).toBeLessThan(argv.indexOf("-A"));
    expect(argv.slice(0, 3)).toEqual(["ssh", "-F", "/etc/fleet/ssh_config"]);
    expect(argv).toEqual(
      expect.arrayContaining(["BatchMode=yes", "ControlMaster=auto", "ControlPath=/tmp/cg-ssh-x/%C"]),
    );
    expect(argv.slice(-3)).toEqual(["--", "10.0.0.1", "sh -c 'id'"]);
    expect(argv.slice(argv.indexOf("-p"), argv.indexOf("-p") + 6)).toEqual([
      "-p",
      "2222",
      "-l",
      "deploy",
      "-i",
      "~/.ssh/fleet",
    ]);
  });

  it("accepts new host keys only when asked, and closes a master by its socket", () => {
    const t = targetFor(inv, "w1");
    expect(sshArgv(t, { ...settings, acceptNewHostKeys: true }, "true")).toContain(
      "StrictHostKeyChecking=accept-new",
    );
    expect(controlArgv(t, settings, "exit").slice(-4)).toEqual(["-O", "exit", "--", "10.0.0.1"]);
  });
});

const CHANGED = `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
The fingerprint for the ED25519 key sent by the remote host is
SHA256:zk+Dzdi9FLr5QVZ39yLj3inFIY4eyDo4KEmSLFfbHU8.
Please contact your system administrator.
Add correct host key in /tmp/fx/known to get rid of this message.
Offending ED25519 key in /tmp/fx/known:1
  remove with:
  ssh-keygen -f "/tmp/fx/known" -R "[127.0.0.1]:2222"
Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.
Host key verification failed.
`;

describe("what ssh's failures mean (its own words, as OpenSSH 9 prints them)", () => {
  it.each([
    [
      CHANGED,
      "CG_SSH_HOST_KEY_CHANGED",
      /has changed \(it now sends SHA256:zk\+Dzdi9.*\); the recorded one is \/tmp\/fx\/known:1: refused/,
    ],
    [
      "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n",
      "CG_SSH_HOST_KEY_UNKNOWN",
      /is not in known_hosts: refused/,
    ],
    ["root@10.0.0.1: Permission denied (publickey).\n", "CG_SSH_LOGIN_DENIED", /login refused \(publickey\)/],
    [
      "ssh: connect to host 10.0.0.1 port 22: No route to host\n",
      "CG_SSH_UNREACHABLE",
      /^connect to host 10\.0\.0\.1 port 22: No route to host$/,
    ],
    [
      "Connection timed out during banner exchange\nConnection to 10.0.0.1 port 22 timed out\n",
      "CG_SSH_UNREACHABLE",
      /timed out/,
    ],
    [
      "ssh: Could not resolve hostname nohost: Name or service not known\n",
      "CG_SSH_UNREACHABLE",
      /Could not resolve/,
    ],
    [
      "/etc/fleet/ssh_config: line 3: Bad configuration option: frobnicate\n",
      "CG_SSH_FAILED",
      /Bad configuration option/,
    ],
  ])("%#", (stderr, code, message) => {
    const e = classifySshFailure("w1", "10.0.0.1", stderr);
    expect(e.code).toBe(code);
    expect(e.reason).toMatch(message);
    expect(e.where).toBe("w1");
  });
});

describe("the probe of a host", () => {
  const root = "uid=0\nnode=/usr/bin/node\nnode_version=20.19.2\ntimeout=yes\ntar=yes\nroot_uid=0\n";

  it("a root login needs no sudo; a user with sudo -n goes through it", () => {
    expect(parseProbe("h", root, true)).toEqual({
      become: [],
      node: { path: "/usr/bin/node", version: "20.19.2" },
      clawguard: undefined,
      hasTimeout: true,
      hasTar: true,
    });
    const user =
      "uid=1000\nbecome=sudo\nclawguard=/usr/local/bin/clawguard\nclawguard_version=0.1.3\nroot_uid=0\n";
    expect(parseProbe("h", user, true)).toMatchObject({
      become: ["sudo", "-n"],
      clawguard: { path: "/usr/local/bin/clawguard", version: "0.1.3" },
    });
  });

  it.each([
    [
      "uid=1000\nbecome=refused\nbecome_error=sudo: a password is required\n",
      true,
      /sudo -n refused: sudo: a password is required/,
    ],
    ["uid=1000\nbecome=missing\n", true, /sudo is not installed/],
    ["uid=1000\nbecome=sudo\nroot_uid=0\n", false, /ansible_become: false/],
    ["uid=1000\nbecome=sudo\nroot_uid=1000\n", true, /did not run as root/],
  ])("a host where root is out of reach is an error: %j", (text, allowed, why) => {
    expect(() => parseProbe("h", text, allowed)).toThrow(why);
  });

  it("tells a node too old, or none", () => {
    expect(nodeProblem(parseProbe("h", root, true))).toBeUndefined();
    expect(nodeProblem(parseProbe("h", root.replace("20.19.2", "18.19.0"), true))).toMatch(
      /\/usr\/bin\/node is Node\.js 18\.19\.0; clawguard needs 20 or later/,
    );
    expect(nodeProblem(parseProbe("h", "uid=0\nroot_uid=0\n", true))).toMatch(/no node on root's PATH/);
  });

  it("an installed clawguard is used when its major and minor version match", () => {
    expect(compatibleVersion("0.1.0", "0.1.7")).toBe(true);
    expect(compatibleVersion("0.1.0", "0.2.0")).toBe(false);
    expect(compatibleVersion("1.4.2", "1.4.0")).toBe(true);
    expect(compatibleVersion("1.4.2", "2.4.2")).toBe(false);
    expect(compatibleVersion("0.1.0", "garbage")).toBe(false);
  });
});
