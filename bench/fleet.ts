/**
 * `clawguard fleet audit` of 8 servers against the same command for 1 of them, in one run: 8
 * booted Debian 12 containers (systemd, sshd, clawguard installed as npm links it) on one lab
 * network, audited over ssh from the lab's namespace. Rounds alternate between 1 host and 8 so both see the same
 * machine; the medians and their ratio are printed (target: 8 hosts in less than 2x the time of
 * one). Run as root: npm run bench:fleet [-- --rounds N]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { FleetLab } from "../e2e/lib/fleet-lab.js";
import {
  cmd,
  Container,
  generateKey,
  INSTALL_DIR,
  installClawguard,
  isRoot,
  PROJECT_DIR,
} from "../e2e/lib/index.js";

const HOSTS = 8;
const TARGET = 2;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** CPU seconds this machine has spent, all processes (user + system), from /proc/stat. */
function cpuSeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
  const [user, nice, system] = fields;
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0)) / 100;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
  const rounds = Math.max(1, Number(values.rounds));
  if (!isRoot) {
    process.stderr.write("bench:fleet boots containers: run it as root\n");
    return 2;
  }
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const work = mkdtempSync(path.join(tmpdir(), "clawguard-bench-fleet-"));
  const lab = await FleetLab.create("bench");
  const servers: Container[] = [];
  try {
    const key = path.join(work, "id_ed25519");
    await generateKey(key);
    const pub = readFileSync(`${key}.pub`, "utf8");
    const nets = [];
    for (let i = 1; i <= HOSTS; i++) nets.push(await lab.server(i));
    log(`booting ${HOSTS} containers...`);
    servers.push(
      ...(await Promise.all(nets.map((network, i) => Container.boot({ tag: `bf${i + 1}`, network, log })))),
    );
    await Promise.all(
      servers.map(async (c) => {
        await installClawguard(c);
        // Linked as npm install -g links it, so fleet reads its version instead of starting it.
        await c.exec(["ln", "-sf", `${INSTALL_DIR}/bin/clawguard.js`, "/usr/local/bin/clawguard"]);
        writeFileSync(path.join(c.root, "root/.ssh/authorized_keys"), pub, { flag: "a" });
      }),
    );
    const inventory = path.join(work, "hosts.ini");
    writeFileSync(
      inventory,
      `[bench]\n${servers.map((_, i) => `s${i + 1} ansible_host=10.79.${i + 1}.2`).join("\n")}\n[all:vars]\nansible_user=root\nansible_ssh_private_key_file=${key}\n`,
    );
    const sshConfig = path.join(work, "ssh_config");
    writeFileSync(
      sshConfig,
      `UserKnownHostsFile ${work}/known_hosts\nGlobalKnownHostsFile /dev/null\nIdentitiesOnly yes\n`,
    );
    const audit = async (limit: string) => {
      const cpu = cpuSeconds();
      const start = process.hrtime.bigint();
      const r = await cmd(
        lab.argv([
          process.execPath,
          path.join(PROJECT_DIR, "bin/clawguard.js"),
          "fleet",
          "audit",
          "-i",
          inventory,
          "--limit",
          limit,
          "--skip",
          "openclaw",
          "--accept-new-host-keys",
          "--ssh-config",
          sshConfig,
          "--state",
          path.join(work, "fleet.db"),
          "--json",
        ]),
        { check: false, timeoutMs: 600_000 },
      );
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const doc = JSON.parse(r.stdout) as { summary: { ok: number } };
      if (doc.summary.ok !== (limit === "bench" ? HOSTS : 1))
        throw new Error(`not every host was audited:\n${r.stdout}`);
      return { ms, cpu: cpuSeconds() - cpu };
    };
    // One untimed run of each records the host keys and warms the page cache, as on a fleet
    // that is audited every day.
    await audit("bench");
    await audit("s1");
    const one: Array<{ ms: number; cpu: number }> = [];
    const all: Array<{ ms: number; cpu: number }> = [];
    for (let i = 0; i < rounds; i++) {
      const [first, second] = i % 2 ? (["bench", "s1"] as const) : (["s1", "bench"] as const);
      for (const limit of [first, second]) {
        const m = await audit(limit);
        (limit === "s1" ? one : all).push(m);
        log(
          `round ${i + 1}/${rounds}: ${limit === "s1" ? "1 host " : `${HOSTS} hosts`} ${fmt(m.ms)} (${m.cpu.toFixed(1)} CPU s)`,
        );
      }
    }
    const a = median(one.map((m) => m.ms));
    const b = median(all.map((m) => m.ms));
    const ratio = b / a;
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    process.stdout.write(
      [
        `fleet audit, 1 host:   median ${fmt(a)} of ${rounds} (${one.map((m) => fmt(m.ms)).join(", ")}), ${median(one.map((m) => m.cpu)).toFixed(1)} CPU s`,
        `fleet audit, ${HOSTS} hosts:  median ${fmt(b)} of ${rounds} (${all.map((m) => fmt(m.ms)).join(", ")}), ${median(all.map((m) => m.cpu)).toFixed(1)} CPU s`,
        `ratio: ${ratio.toFixed(2)}x the time of one host (target < ${TARGET}x: ${ratio < TARGET ? "met" : "NOT met"}); load average ${load}`,
        "",
      ].join("\n"),
    );
    return 0;
  } finally {
    await Promise.all(servers.map((c) => c.destroy()));
    await lab.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
