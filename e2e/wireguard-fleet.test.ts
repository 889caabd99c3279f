import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJoinCode, encodeJoinCode } from "../src/shield/wireguard/join-code.js";
import { bundledTarball } from "./lib/bundle.js";
import { sshAccessTests } from "./lib/fleet-ssh.js";
import {
  Container,
  PROJECT_DIR,
  Topology,
  cmd,
  installClawguard,
  isRoot,
  sleep,
  type CmdResult,
  type Node,
} from "./lib/index.js";

/**
 * A fleet on one "internet": the shield server, agent 1 (joined by command) and agent 2 (born
 * from cloud-init user-data alone), each a booted Debian 12 on a router namespace, which also
 * holds the destinations: allowed.test (198.51.100.80) and denied.test (198.51.100.66), HTTP
 * and HTTPS. Agents reach the proxy only over WireGuard (wireguard-go in each container).
 *
 *   shield 198.18.1.2 --+
 *   agent1 198.18.2.2 --+-- router (198.51.100.80 and .66 on its lo, tcpdump here)
 *   agent2 198.18.3.2 --+
 */
const SHIELD_PUBLIC = "198.18.1.2";
const ENDPOINT = `${SHIELD_PUBLIC}:51820`;
const PROXY = { host: "10.77.0.1", port: 3128 };
const ALLOWED = { name: "allowed.test", v4: "198.51.100.80", v6: "2001:db8:ff::80" };
const DENIED = { name: "denied.test", v4: "198.51.100.66" };
const CONFIG = "/etc/clawguard/shield.yaml";
const TUN = ["--bind=/dev/net/tun"];
const WG_PACKAGES = ["wireguard-tools", "wireguard-go", "nftables"];

/** The destinations: answer with who they are and how they were reached; /hold streams until closed. */
const INTERNET = `
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
const [cert, key] = process.argv.slice(2);
let n = 0;
const handler = (req, res) => {
  if (req.url === "/hold") {
    const id = ++n;
    res.writeHead(200, { "content-type": "text/plain" });
    console.log(JSON.stringify({ event: "open", id, at: Date.now() }));
    const t = setInterval(() => res.write("."), 100);
    req.socket.on("close", () => { clearInterval(t); console.log(JSON.stringify({ event: "closed", id, at: Date.now() })); });
    return;
  }
  res.setHeader("connection", "close");
  res.end("dest " + req.socket.localAddress.replace(/^::ffff:/, "") + " " + (req.socket.encrypted ? "https" : "http") + " " + req.url + "\\n");
};
const listening = (s) => new Promise((r) => s.once("listening", r));
const h = http.createServer(handler).listen(80, "::");
const s = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler).listen(443, "::");
await Promise.all([listening(h), listening(s)]);
console.log("ready");
`;

/** Run in a container with its own Node: what a plain socket gets, independent of clawguard. */
const PROBE = `
const net = require("net"), tls = require("tls");
const [kind, ...a] = process.argv.slice(2);
const say = (s) => { console.log(s); process.exit(0); };
let holding = false;
setTimeout(() => say(holding ? "still holding" : "blocked timeout"), Number(process.env.PROBE_MS || 3000));
if (kind === "tcp") {
  const s = net.connect({ host: a[0], port: Number(a[1]) });
  s.on("connect", () => say("open"));
  s.on("error", (e) => say(e.code === "ECONNREFUSED" ? "open refused" : "blocked " + e.code));
} else {
  // get|hold PROXYHOST PROXYPORT HOST PORT PATH [tls]
  const [ph, pp, th, tp, p, useTls] = a;
  const s = net.connect({ host: ph, port: Number(pp) });
  s.on("error", (e) => say("failed " + e.code));
  s.on("connect", () => s.write("CONNECT " + th + ":" + tp + " HTTP/1.1\\r\\nHost: " + th + ":" + tp + "\\r\\n\\r\\n"));
  let head = "";
  const onHead = (d) => {
    head += d.toString("latin1");
    if (!head.includes("\\r\\n\\r\\n")) return;
    s.off("data", onHead);
    const status = head.slice(0, head.indexOf("\\r\\n"));
    if (!/ 200 /.test(status)) return say("refused " + status);
    const c = useTls ? tls.connect({ socket: s, servername: th, rejectUnauthorized: false }) : s;
    let body = "";
    c.on("data", (d) => {
      body += d.toString("latin1");
      if (kind === "hold" && !holding && body.includes("\\r\\n\\r\\n")) { holding = true; console.log("holding"); }
    });
    c.on("error", () => {});
    c.on("close", () => say(kind === "hold" ? "closed" : "ok " + body.split("\\r\\n\\r\\n")[1]?.trim()));
    c.write("GET " + p + " HTTP/1.1\\r\\nHost: " + th + "\\r\\nConnection: close\\r\\n\\r\\n");
  };
  s.on("data", onHead);
}
`;

let topo: Topology;
let work = "";
let shield: Container;
let agent1: Container;
let agent2Boot: Promise<Container>;
let agent2: Container | undefined;
/** The agents' tunnel addresses, as enrolment gave them. */
let agent1Tunnel = "";
let agent2Tunnel = "";
const holds: Array<{ event: string; id: number; at: number }> = [];
const nodes: Record<string, Node> = {};

const sh = (c: Container, script: string, timeoutMs = 120_000) => c.exec(script, { check: false, timeoutMs });
const clawguard = (c: Container, args: string[], timeoutMs = 120_000) =>
  c.exec(["clawguard", ...args], { check: false, timeoutMs });
const probe = async (c: Container, args: string[], ms = 3000): Promise<string> =>
  (
    await c.exec(["node", "/root/probe.cjs", ...args], { check: false, env: { PROBE_MS: String(ms) } })
  ).stdout.trim();
const viaShield = (c: Container, host: string, port: number, p = "/", tls = false, ms = 5000) =>
  probe(c, ["get", PROXY.host, String(PROXY.port), host, String(port), p, ...(tls ? ["tls"] : [])], ms);

function must(r: CmdResult, what: string): CmdResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** What a join may change on an agent: tables, interfaces, tunnel configs, clawguard's files. */
const footprint = (c: Container) =>
  sh(
    c,
    "nft list tables; ls /sys/class/net; find /etc/wireguard /etc/clawguard /var/lib/clawguard /etc/systemd/system -printf '%p %m %u %s\\n' 2>&1 | sort",
  ).then((r) => r.stdout);

async function enroll(id: string, more: string[] = []): Promise<string> {
  const r = must(
    await clawguard(shield, [
      "shield",
      "enroll",
      id,
      "--config",
      CONFIG,
      "--endpoint",
      ENDPOINT,
      "--json",
      ...more,
    ]),
    `shield enroll ${id}`,
  );
  return (JSON.parse(r.stdout) as { join: string }).join;
}

async function until<T>(
  f: () => Promise<T | undefined>,
  label: string,
  ms: number,
  stepMs = 100,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await sleep(stepMs);
  }
}

/**
 * A login account with an authorized key, made before the agent joins: the account a grant
 * without --as opens (root is never opened by a certificate unless named).
 */
const DEPLOY_ACCOUNT =
  "useradd -m -s /bin/bash deploy && install -d -m 700 -o deploy -g deploy /home/deploy/.ssh && " +
  "{ cat /root/.ssh/authorized_keys 2>/dev/null || " +
  "{ ssh-keygen -q -t ed25519 -N '' -f /tmp/deploy-key >/dev/null && cat /tmp/deploy-key.pub; }; } " +
  "> /home/deploy/.ssh/authorized_keys && chown deploy:deploy /home/deploy/.ssh/authorized_keys";

/** The cloud image: cloud-init and Node (with npm) installed, the NoCloud seed with the user-data. */
async function cloudImage(root: string, userData: string): Promise<void> {
  await cmd(
    [
      "systemd-nspawn",
      "-q",
      "--register=no",
      "--keep-unit",
      "--private-network",
      "--setenv=DEBIAN_FRONTEND=noninteractive",
      "-M",
      `prep-${path.basename(path.dirname(root))}`.slice(0, 60),
      "-D",
      root,
      "sh",
      "-c",
      // A cloud image ships its locale generated; cloud-init's locale module needs it.
      "apt-get install -y -q --no-download --no-install-recommends cloud-init locales && " +
        "sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen && " +
        DEPLOY_ACCOUNT,
    ],
    { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeoutMs: 600_000 },
  );
  const node = (await cmd(["sh", "-c", 'readlink -f "$(command -v node)"'])).stdout.trim();
  const npm = path.resolve(path.dirname(node), "../lib/node_modules/npm");
  await cmd(["cp", node, path.join(root, "usr/local/bin/node")]);
  await cmd(["mkdir", "-p", path.join(root, "usr/local/lib/node_modules")]);
  await cmd(["cp", "-a", npm, path.join(root, "usr/local/lib/node_modules/")]);
  await cmd(["ln", "-sf", "../lib/node_modules/npm/bin/npm-cli.js", path.join(root, "usr/local/bin/npm")]);
  await cmd([
    "mkdir",
    "-p",
    path.join(root, "var/lib/cloud/seed/nocloud"),
    path.join(root, "etc/cloud/cloud.cfg.d"),
  ]);
  writeFileSync(
    path.join(root, "var/lib/cloud/seed/nocloud/meta-data"),
    "instance-id: cg-agent2\nlocal-hostname: agent2\n",
  );
  writeFileSync(path.join(root, "var/lib/cloud/seed/nocloud/user-data"), userData);
  writeFileSync(
    path.join(root, "etc/cloud/cloud.cfg.d/90-datasource.cfg"),
    "datasource_list: [ NoCloud, None ]\n",
  );
  writeFileSync(path.join(root, "root/probe.cjs"), PROBE);
}

describe.skipIf(!isRoot)(
  "a fleet over WireGuard: shield, agent joined by command, agent born from cloud-init",
  () => {
    beforeAll(async () => {
      work = mkdtempSync(path.join(tmpdir(), "clawguard-wg-fleet-"));
      topo = await Topology.create("wg");
      nodes.shield = await topo.addNode("shield", 1);
      nodes.agent1 = await topo.addNode("agent1", 2);
      nodes.agent2 = await topo.addNode("agent2", 3);
      for (const a of [ALLOWED.v4, ALLOWED.v6, DENIED.v4]) await topo.addInternet(a);
      await cmd([
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=allowed.test",
        "-addext",
        "subjectAltName=DNS:allowed.test,DNS:denied.test",
        "-keyout",
        path.join(work, "key.pem"),
        "-out",
        path.join(work, "cert.pem"),
      ]);
      writeFileSync(path.join(work, "internet.mjs"), INTERNET);
      await topo.start(
        [
          process.execPath,
          path.join(work, "internet.mjs"),
          path.join(work, "cert.pem"),
          path.join(work, "key.pem"),
        ],
        /ready/,
        (line) => {
          if (line.startsWith("{")) holds.push(JSON.parse(line) as { event: string; id: number; at: number });
        },
      );

      // Built while the containers boot.
      const tarballBuilt = bundledTarball(work);
      [shield, agent1] = await Promise.all([
        Container.boot({ tag: "wgshield", network: nodes.shield, nspawnArgs: TUN }),
        Container.boot({ tag: "wgagent1", network: nodes.agent1, nspawnArgs: TUN }),
      ]);
      await Promise.all([
        installClawguard(shield).then(() => shield.aptInstallNoRecommends(...WG_PACKAGES, "ufw")),
        installClawguard(agent1).then(() => agent1.aptInstallNoRecommends(...WG_PACKAGES)),
      ]);
      writeFileSync(path.join(agent1.root, "root/probe.cjs"), PROBE);
      // The agent's admin account, as an operator's server has one: the account a grant opens.
      must(await sh(agent1, DEPLOY_ACCOUNT), "the deploy account");

      // The shield server: SSH open, then the tunnel, its sync daemon and the proxy.
      must(await sh(shield, "ufw allow 22/tcp && ufw --force enable"), "ufw");
      must(
        await sh(
          shield,
          `printf '${ALLOWED.v4} ${ALLOWED.name}\\n${DENIED.v4} ${DENIED.name}\\n' >> /etc/hosts`,
        ),
        "hosts",
      );
      must(
        await clawguard(shield, ["shield", "install", "--wireguard", "--endpoint", ENDPOINT]),
        "shield install",
      );
      const cfg = readFileSync(path.join(shield.root, CONFIG.slice(1)), "utf8");
      writeFileSync(
        path.join(shield.root, CONFIG.slice(1)),
        cfg.replace(
          /^allow: \[\]$/m,
          `allow: ["${ALLOWED.name}:80", "${ALLOWED.name}:443", ${ALLOWED.v4}/32]`,
        ) + "ssh_access: { jump: true }\n",
      );
      // The fleet's SSH CA before any enrolment: every join code then carries it and the KRL's URL.
      must(await clawguard(shield, ["shield", "ca", "init", "--config", CONFIG]), "shield ca init");
      // Agent 2 is born from user-data alone, while agent 1's tests run. Enrolment needs the
      // shield's key and config, not its interface: the peer is set as the interface comes up.
      const tarball = await tarballBuilt;
      const code2 = await enroll("agent2");
      agent2Tunnel = decodeJoinCode(code2, Math.floor(Date.now() / 1000)).addresses[0]!.split("/")[0]!;
      const rendered = await cmd(
        [
          process.execPath,
          path.join(PROJECT_DIR, "bin/clawguard.js"),
          "cloud-init",
          "--join",
          code2,
          "--package",
          tarball,
        ],
        { timeoutMs: 120_000 },
      );
      expect(rendered.stderr).toMatch(/warning: the user-data is \d+ KiB, over the 64 KiB limit/);
      agent2Boot = Container.boot({
        tag: "wgagent2",
        network: nodes.agent2,
        nspawnArgs: TUN,
        prepare: (root) => cloudImage(root, rendered.stdout),
        bootTimeoutMs: 900_000,
      });
      agent2Boot.then(
        (c) => (agent2 = c),
        () => undefined,
      );
      must(
        await sh(
          shield,
          "systemctl daemon-reload && systemctl enable --now wg-quick@cg0 clawguard-shield-wireguard clawguard-shield",
        ),
        "start the shield",
      );
      await until(
        async () =>
          (await sh(shield, "ss -Hltn")).stdout.includes(`${PROXY.host}:${PROXY.port}`) ? true : undefined,
        "the proxy to listen on the tunnel",
        30_000,
        300,
      );
    }, 1_500_000);

    afterAll(async () => {
      await Promise.all([
        shield?.destroy(),
        agent1?.destroy(),
        agent2Boot?.then(
          (c) => c.destroy(),
          () => undefined,
        ),
      ]);
      await topo?.destroy();
      if (work) rmSync(work, { recursive: true, force: true });
    }, 300_000);

    it("serves the proxy on its tunnel address only; the public address shows SSH and the WireGuard port, nothing else", async () => {
      for (const u of ["wg-quick@cg0", "clawguard-shield-wireguard", "clawguard-shield"])
        expect((await sh(shield, `systemctl is-active ${u}`)).stdout.trim(), u).toBe("active");
      expect((await sh(shield, "wg show cg0 listen-port")).stdout.trim()).toBe("51820");
      // The proxy process holds no capability; the interface belongs to root's units.
      const pid = (await sh(shield, "systemctl show -p MainPID --value clawguard-shield")).stdout.trim();
      expect((await sh(shield, `grep CapEff /proc/${pid}/status`)).stdout).toMatch(/CapEff:\s+0+$/m);
      for (const port of [3128, 9090]) {
        const r = await topo.in([
          "node",
          "-e",
          `const s=require("net").connect(${port},"${SHIELD_PUBLIC}");s.on("connect",()=>{console.log("open");process.exit()});s.on("error",e=>{console.log(e.code);process.exit()});setTimeout(()=>{console.log("timeout");process.exit()},2000)`,
        ]);
        expect(r.stdout.trim(), `${SHIELD_PUBLIC}:${port}`).not.toBe("open");
      }
    });

    it("refuses a join code that is cut short, altered, expired or for another shield, and changes nothing", async () => {
      const before = await footprint(agent1);
      // Before any lockdown the agent reaches the destination directly: the later checks can fail.
      expect(await probe(agent1, ["tcp", ALLOWED.v4, "80"])).toBe("open");
      const good = await enroll("probe-agent");
      must(
        await clawguard(shield, ["shield", "revoke", "probe-agent", "--config", CONFIG]),
        "revoke probe-agent",
      );
      const decoded = decodeJoinCode(good, Math.floor(Date.now() / 1000));
      const cases: Array<[string, string, RegExp]> = [
        ["cut short", good.slice(0, -5), /CG_JOIN_CODE_INVALID|checksum does not match/],
        [
          "altered",
          good.slice(0, 40) + (good[40] === "A" ? "B" : "A") + good.slice(41),
          /checksum does not match/,
        ],
        [
          "expired",
          encodeJoinCode({ ...decoded, expires: Math.floor(Date.now() / 1000) - 60 }),
          /expired at/,
        ],
      ];
      for (const [what, code, why] of cases) {
        const r = await clawguard(agent1, ["lockdown", "--join", code, "--apply"]);
        expect(r.code, what).toBe(2);
        expect(r.stderr, what).toMatch(why);
      }
      // A shield with another key, at the real shield's address: only the handshake can tell.
      must(
        await sh(
          shield,
          `mkdir -p /root/other && cd /root/other && umask 077 && wg genkey > other.key && cat > shield.yaml <<'EOF'
listen: 10.77.0.1:3128
log: { path: other.db }
wireguard: { interface: cgother, address: [10.77.0.1/16], private_key_file: other.key, endpoint: "${ENDPOINT}" }
EOF`,
        ),
        "another shield's config",
      );
      const other = must(
        await clawguard(shield, [
          "shield",
          "enroll",
          "agent1",
          "--config",
          "/root/other/shield.yaml",
          "--json",
        ]),
        "enroll at the other shield",
      );
      const started = Date.now();
      const r = await clawguard(agent1, [
        "lockdown",
        "--join",
        (JSON.parse(other.stdout) as { join: string }).join,
        "--apply",
        "--handshake-timeout",
        "4000",
        "--json",
      ]);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stderr)).toMatchObject({ code: "CG_JOIN_NO_HANDSHAKE" });
      expect(r.stderr).toMatch(
        /no handshake with the shield at 198.18.1.2:51820 within 4 s.*Nothing was left changed/,
      );
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(await footprint(agent1)).toBe(before);
      expect(await probe(agent1, ["tcp", ALLOWED.v4, "80"])).toBe("open");
    });

    it("goes from enrolment to the first allowed request with shield enroll and lockdown --join --apply", async () => {
      const started = Date.now();
      const code = await enroll("agent1");
      agent1Tunnel = decodeJoinCode(code, Math.floor(Date.now() / 1000)).addresses[0]!.split("/")[0]!;
      const joined = await clawguard(agent1, ["lockdown", "--join", code, "--apply", "--json"]);
      expect(joined.code, joined.stderr).toBe(0);
      const first = await viaShield(agent1, ALLOWED.name, 80, "/first");
      const elapsed = Date.now() - started;
      console.log(`[wireguard-fleet] enrol to first allowed request: ${elapsed} ms`);
      expect(first).toBe(`ok dest ${ALLOWED.v4} http /first`);
      expect(await viaShield(agent1, ALLOWED.name, 443, "/tls", true)).toBe(
        `ok dest ${ALLOWED.v4} https /tls`,
      );
      expect(await viaShield(agent1, DENIED.name, 80)).toMatch(/^refused HTTP\/1\.1 403/);
      // Nothing else leaves: not the destination, not IPv6, not the shield's public address.
      expect(await probe(agent1, ["tcp", ALLOWED.v4, "80"])).toMatch(/^blocked/);
      expect(await probe(agent1, ["tcp", ALLOWED.v6, "80"])).toMatch(/^blocked/);
      expect(await probe(agent1, ["tcp", SHIELD_PUBLIC, "22"])).toMatch(/^blocked/);
      const v = await clawguard(agent1, [
        "lockdown",
        "--verify",
        "--probe",
        `${ALLOWED.v4}:80`,
        "--probe-via-shield",
        `http://${ALLOWED.name}/`,
        "--json",
      ]);
      const report = JSON.parse(v.stdout) as {
        ok: boolean;
        probes: Array<{ id: string; held: boolean; outcome: string }>;
      };
      expect(report.probes.filter((p) => !p.held)).toEqual([]);
      expect(report.probes.map((p) => p.id)).toEqual(
        expect.arrayContaining(["tunnel_up", "handshake", "direct_shield"]),
      );
      expect(v.code).toBe(0);
      // No token anywhere on the agent: the tunnel address is the identity.
      expect(
        (await sh(agent1, "grep -rl 'Proxy-Authorization\\|token' /etc/clawguard /etc/wireguard 2>/dev/null"))
          .stdout,
      ).toBe("");
      // Enrolling it again without a new key is refused, and changes nothing on the shield.
      const cfgBefore = readFileSync(path.join(shield.root, CONFIG.slice(1)), "utf8");
      const again = await clawguard(shield, ["shield", "enroll", "agent1", "--config", CONFIG]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/agent "agent1" is already enrolled/);
      expect(readFileSync(path.join(shield.root, CONFIG.slice(1)), "utf8")).toBe(cfgBefore);
    });

    it("lets nothing but UDP to the shield's WireGuard port cross the internet: no token, name, CONNECT or HTTP", async () => {
      const file = path.join(work, "agent1.pcap");
      const capture = await topo.capture(nodes.agent1!.peerIf, file);
      expect(await viaShield(agent1, ALLOWED.name, 80, "/secret-path-in-the-clear")).toMatch(/^ok /);
      expect(await viaShield(agent1, ALLOWED.name, 443, "/tls", true)).toMatch(/^ok /);
      await capture.stop();
      const listed = (await cmd(["tcpdump", "-r", file, "-nn", "ip or ip6"])).stdout.trim().split("\n");
      expect(listed.length).toBeGreaterThan(10);
      const udp = new RegExp(
        `^\\S+ IP ${nodes.agent1!.containerAddr.replace(/\./g, "\\.")}\\.\\d+ > ${SHIELD_PUBLIC.replace(/\./g, "\\.")}\\.51820: UDP|^\\S+ IP ${SHIELD_PUBLIC.replace(/\./g, "\\.")}\\.51820 > ${nodes.agent1!.containerAddr.replace(/\./g, "\\.")}\\.\\d+: UDP`,
      );
      expect(listed.filter((l) => !udp.test(l) && !/ICMP6, (neighbor|router|multicast)/.test(l))).toEqual([]);
      const bytes = readFileSync(file);
      for (const needle of [ALLOWED.name, "CONNECT", "HTTP/1.1", "secret-path", "GET /"])
        expect(bytes.includes(Buffer.from(needle)), needle).toBe(false);
    });

    it("answers nothing to a host on the internet that takes agent 1's public address", async () => {
      const spoofed = nodes.agent1!.containerAddr;
      const connect = (host: string) =>
        topo.in([
          "node",
          "-e",
          `const s=require("net").connect({host:"${host}",port:${PROXY.port},localAddress:"${spoofed}"});s.on("connect",()=>{console.log("open");process.exit()});s.on("error",e=>{console.log(e.code);process.exit()});setTimeout(()=>{console.log("timeout");process.exit()},2500)`,
        ]);
      must(await topo.in(["ip", "addr", "add", `${spoofed}/32`, "dev", "lo"]), "take the address");
      must(
        await topo.in(["ip", "route", "add", "10.77.0.0/16", "via", SHIELD_PUBLIC]),
        "route to the tunnel's range",
      );
      try {
        expect((await connect(SHIELD_PUBLIC)).stdout.trim()).not.toBe("open");
        expect((await connect(PROXY.host)).stdout.trim()).not.toBe("open");
        // Without the shield's table (and ufw), the address would answer: the check above can fail.
        must(await sh(shield, "nft delete table inet clawguard_shield_wg && ufw disable"), "drop the table");
        expect((await connect(PROXY.host)).stdout.trim()).toBe("open");
      } finally {
        await topo.in(["ip", "route", "del", "10.77.0.0/16"]);
        await topo.in(["ip", "addr", "del", `${spoofed}/32`, "dev", "lo"]);
        must(
          await sh(shield, "ufw --force enable && systemctl restart clawguard-shield-wireguard"),
          "restore the table",
        );
      }
      await until(
        async () =>
          (await sh(shield, "nft list table inet clawguard_shield_wg")).code === 0 ? true : undefined,
        "the table back",
        20_000,
        300,
      );
    });

    it("is born from cloud-init alone: hardened, joined, and reaching an allowed destination and nothing else", async () => {
      const c = await agent2Boot;
      const status = await sh(c, "cloud-init status --wait --long", 600_000);
      const log = (await sh(c, "cat /var/log/clawguard-firstboot.log")).stdout;
      expect(status.stdout, `${status.stdout}\n${log}`).toMatch(/status: done/);
      expect(log).toMatch(/^== \S+ done$/m);
      expect((await sh(c, "ls /etc/clawguard/join.code 2>&1")).stdout).toMatch(/No such file/);
      const harden = JSON.parse((await sh(c, "cat /var/log/clawguard-harden.json")).stdout) as {
        applied: boolean;
      };
      expect(harden.applied).toBe(true);
      expect(await viaShield(c, ALLOWED.name, 443, "/born", true)).toBe(`ok dest ${ALLOWED.v4} https /born`);
      expect(await viaShield(c, DENIED.name, 443)).toMatch(/^refused HTTP\/1\.1 403/);
      expect(await probe(c, ["tcp", ALLOWED.v4, "443"])).toMatch(/^blocked/);
      expect(await probe(c, ["tcp", ALLOWED.v6, "443"])).toMatch(/^blocked/);
      expect(
        (await sh(c, "systemctl is-enabled wg-quick@cg0 clawguard-lockdown")).stdout.trim().split("\n"),
      ).toEqual(["enabled", "enabled"]);
    });

    it("keeps agent 1 from agent 2's tunnel address and the shield's admin port, even with its own rules gone", async () => {
      await agent2Boot;
      const a2 = agent2Tunnel;
      const shieldKey = (await sh(shield, "wg show cg0 public-key")).stdout.trim();
      // A compromised agent 1: its own table gone, the whole tunnel range routed into the tunnel.
      must(
        await sh(
          agent1,
          `nft delete table inet clawguard_egress && wg set cg0 peer ${shieldKey} allowed-ips 10.77.0.0/16 && ip route replace 10.77.0.0/16 dev cg0`,
        ),
        "open agent 1 up",
      );
      try {
        expect(await probe(agent1, ["tcp", a2, "22"])).toMatch(/^blocked/);
        expect(await probe(agent1, ["tcp", PROXY.host, "22"])).toMatch(/^blocked/);
        expect(await probe(agent1, ["tcp", PROXY.host, "9090"])).toMatch(/^blocked/);
        // Through the proxy, the admin port is one of the shield's own endpoints.
        for (const host of ["127.0.0.1", PROXY.host])
          expect(await viaShield(agent1, host, 9090)).toMatch(/^refused HTTP\/1\.1 403/);
        // The same probe gets through when the shield's table is gone: the checks above can fail.
        must(await sh(shield, "nft delete table inet clawguard_shield_wg"), "drop the shield's table");
        expect(await probe(agent1, ["tcp", PROXY.host, "22"])).toMatch(/^open/);
      } finally {
        must(await sh(shield, "systemctl restart clawguard-shield-wireguard"), "restore the shield's table");
        must(
          await sh(
            agent1,
            "ip route del 10.77.0.0/16 dev cg0; systemctl restart clawguard-lockdown wg-quick@cg0",
          ),
          "restore agent 1",
        );
      }
      await until(
        async () => ((await viaShield(agent1, ALLOWED.name, 80)).startsWith("ok ") ? true : undefined),
        "agent 1 back",
        30_000,
        500,
      );
    });

    it("adopts the tunnel when the shield restarts: peers and handshakes kept, agents served again within 2 s", async () => {
      const peers = (await sh(shield, "wg show cg0 latest-handshakes")).stdout.trim();
      expect(peers.split("\n")).toHaveLength(2);
      must(await sh(shield, "systemctl restart clawguard-shield"), "restart");
      const restarted = Date.now();
      const back = await Promise.all(
        [agent1, agent2!].map((c) =>
          until(
            async () =>
              (await viaShield(c, ALLOWED.name, 80, "/", false, 1500)).startsWith("ok ")
                ? Date.now()
                : undefined,
            "a request after the restart",
            10_000,
            50,
          ),
        ),
      );
      const worst = Math.max(...back) - restarted;
      console.log(
        `[wireguard-fleet] agents served again ${back.map((t) => t - restarted).join(" ms, ")} ms after the restart`,
      );
      expect(worst).toBeLessThan(2000);
      // The interface never went away: the same peers, and no handshake had to start over.
      const after = (await sh(shield, "wg show cg0 latest-handshakes")).stdout.trim();
      // (wg lists peers in no set order)
      const keys = (t: string) =>
        t
          .split("\n")
          .map((l) => l.split("\t")[0])
          .sort();
      expect(keys(after)).toEqual(keys(peers));
      for (const line of after.split("\n")) expect(Number(line.split("\t")[1])).toBeGreaterThan(0);
    });

    it("comes back after agent 1 reboots: tunnel and lockdown, and still nothing leaves but through the shield", async () => {
      await agent1.reboot(180_000);
      expect(
        (await sh(agent1, "systemctl is-active wg-quick@cg0 clawguard-lockdown")).stdout.trim().split("\n"),
      ).toEqual(["active", "active"]);
      expect(
        await until(
          async () => {
            const r = await viaShield(agent1, ALLOWED.name, 80, "/after-reboot");
            return r.startsWith("ok ") ? r : undefined;
          },
          "a request after the reboot",
          30_000,
          500,
        ),
      ).toBe(`ok dest ${ALLOWED.v4} http /after-reboot`);
      expect(await probe(agent1, ["tcp", ALLOWED.v4, "80"])).toMatch(/^blocked/);
      expect(await probe(agent1, ["tcp", ALLOWED.v6, "80"])).toMatch(/^blocked/);
    });

    // Before agent 1 is revoked: the operator reaches both agents through the shield.
    sshAccessTests(() => ({
      topo,
      work,
      config: CONFIG,
      shieldPublic: SHIELD_PUBLIC,
      shield,
      agent1,
      agent2: agent2!,
      agent1Tunnel,
      agent2Tunnel,
    }));

    it("revokes agent 1: its open tunnel closes within 1 s, it has no egress at all, agent 2 goes on, and the log says so", async () => {
      const holding = agent1.exec(
        ["node", "/root/probe.cjs", "hold", PROXY.host, String(PROXY.port), ALLOWED.name, "80", "/hold"],
        {
          check: false,
          env: { PROBE_MS: "60000" },
          timeoutMs: 90_000,
        },
      );
      const opened = await until(
        async () => holds.find((h) => h.event === "open"),
        "the held tunnel",
        10_000,
      );
      const r = await clawguard(shield, ["shield", "revoke", "agent1", "--config", CONFIG, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        agent: "agent1",
        shieldLogged: true,
        live: { applied: true },
      });
      // From the moment shield.yaml changed: what the shield is held to.
      const revoked = Math.round(Number((await sh(shield, `stat -c %.3Y ${CONFIG}`)).stdout.trim()) * 1000);
      const closed = await until(
        async () => holds.find((h) => h.event === "closed" && h.id === opened.id),
        "the tunnel to close",
        10_000,
        20,
      );
      console.log(
        `[wireguard-fleet] agent 1's tunnel closed ${closed.at - revoked} ms after shield revoke wrote shield.yaml`,
      );
      expect(closed.at - revoked).toBeLessThan(1000);
      // The shield closed it before the peer left the interface: the agent saw the close too.
      expect((await holding).stdout.trim().split("\n")).toEqual(["holding", "closed"]);
      // Fail-closed: through the shield nothing (the peer is gone), and directly nothing either.
      expect(await viaShield(agent1, ALLOWED.name, 80, "/", false, 3000)).not.toMatch(/^ok /);
      expect(await probe(agent1, ["tcp", ALLOWED.v4, "80"])).toMatch(/^blocked/);
      expect(await probe(agent1, ["tcp", SHIELD_PUBLIC, String(PROXY.port)])).toMatch(/^blocked/);
      expect(await viaShield(agent2!, ALLOWED.name, 80, "/still")).toBe(`ok dest ${ALLOWED.v4} http /still`);
      expect((await sh(shield, "wg show cg0 peers")).stdout.trim().split("\n")).toHaveLength(1);
      const log = await clawguard(shield, [
        "shield",
        "log",
        "--config",
        CONFIG,
        "--agent",
        "agent1",
        "--json",
      ]);
      const { records } = JSON.parse(log.stdout) as { records: Array<{ method: string; reason: string }> };
      expect(records.find((x) => x.method === "REVOKE")?.reason).toMatch(
        /^revoked: agent left \/etc\/clawguard\/shield.yaml/,
      );
      expect((await clawguard(shield, ["shield", "verify-log", "--config", CONFIG])).code).toBe(0);
      const agents = JSON.parse(
        (await clawguard(shield, ["shield", "agents", "--config", CONFIG, "--json"])).stdout,
      ) as {
        agents: Array<{
          id: string;
          wireguard: { onInterface: boolean; endpoint: string | null; latestHandshake: number | null };
        }>;
      };
      expect(agents.agents.map((a) => a.id)).toEqual(["agent2"]);
      expect(agents.agents[0]!.wireguard).toMatchObject({
        onInterface: true,
        endpoint: expect.stringMatching(/^198\.18\.3\.2:\d+$/),
      });
      expect(agents.agents[0]!.wireguard.latestHandshake).toBeGreaterThan(Date.now() - 300_000);
      // The sync daemon read the file after the revocation and kept it for the next enroll, in
      // its own cache directory (its unit is ProtectSystem=strict): root's, 0700 and 0600.
      const text = readFileSync(path.join(shield.root, CONFIG.slice(1)));
      const sha = createHash("sha256").update(text).digest("hex");
      const kept = await until(
        async () => {
          // Each entry on a line of its own, after its name (an entry is one line of JSON).
          const r = await sh(
            shield,
            `for f in /var/cache/clawguard/shield-config/*.json; do printf '%s\\t' "$f"; cat "$f"; echo; done`,
          );
          for (const line of r.stdout.split("\n")) {
            const tab = line.indexOf("\t");
            if (tab < 0) continue;
            try {
              if ((JSON.parse(line.slice(tab + 1)) as { sha256: string }).sha256 === sha)
                return line.slice(0, tab);
            } catch {
              // Not an entry (yet): asked again.
            }
          }
          return undefined;
        },
        "the sync daemon to keep the file as revoke left it",
        10_000,
        200,
      );
      const modes = await sh(shield, `stat -c '%a %U' /var/cache/clawguard/shield-config ${kept}`);
      expect(modes.stdout.trim().split("\n")).toEqual(["700 root", "600 root"]);
    });
  },
);
