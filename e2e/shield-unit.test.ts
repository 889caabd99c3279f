import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isRoot, sleep } from "./lib/index.js";
import { useContainer } from "./lib/suite.js";

const CONFIG = `listen: 127.0.0.1:3128
log: { path: /var/lib/clawguard-shield/shield.db }
agents:
  - { id: probe, sources: [127.0.0.1/32], allow: [127.0.0.0/8] }
`;

/** An origin on 127.0.0.1:8080 and N requests to it through the shield, from Node in the container. */
const ORIGIN = `require("node:http").createServer((q, s) => s.end("ok")).listen(8080, "127.0.0.1");`;
const CLIENT = `
const http = require("node:http");
const agent = new http.Agent({ keepAlive: true });
const n = Number(process.argv[2]);
let ok = 0;
const one = () => new Promise((resolve, reject) => {
  http.get({ host: "127.0.0.1", port: 3128, path: "http://127.0.0.1:8080/", agent }, (res) => {
    let body = "";
    res.on("data", (d) => (body += d)).on("end", () => { if (res.statusCode === 200 && body === "ok") ok++; resolve(); });
  }).on("error", reject);
});
(async () => { for (let i = 0; i < n; i++) await one(); console.log(ok); agent.destroy(); })();
`;

describe.skipIf(!isRoot)("the shield's unit under a booted systemd", () => {
  const ct = useContainer({ tag: "shield" });

  it("starts sandboxed as its own user, serves agents, and runs its log writer at nice 19 where it may come back", async () => {
    const c = ct();
    await c.exec("useradd --system --no-create-home --shell /usr/sbin/nologin clawguard-shield");
    await c.exec(["clawguard", "shield", "install"]);
    writeFileSync(path.join(c.root, "etc/clawguard/shield.yaml"), CONFIG);
    writeFileSync(path.join(c.root, "root/origin.cjs"), ORIGIN);
    writeFileSync(path.join(c.root, "root/client.cjs"), CLIENT);
    await c.exec("systemd-run --unit=probe-origin /usr/local/bin/node /root/origin.cjs");
    await c.exec("systemctl daemon-reload && systemctl start clawguard-shield");
    let listening = false;
    for (let i = 0; i < 100 && !listening; i++) {
      listening = (await c.exec(["ss", "-Hltn", "sport = :3128"])).stdout.includes("127.0.0.1:3128");
      if (!listening) await sleep(100);
    }
    const status = await c.exec("systemctl status clawguard-shield --no-pager", { check: false });
    expect(listening, status.stdout).toBe(true);

    const served = await c.exec(["/usr/local/bin/node", "/root/client.cjs", "200"]);
    expect(served.stdout.trim()).toBe("200");

    const pid = (await c.exec("systemctl show -p MainPID --value clawguard-shield")).stdout.trim();
    expect((await c.exec(["ps", "-o", "user=", "-p", pid])).stdout.trim()).toBe("clawguard-shield");
    // Every thread's nice value. The writer steps back to 19 only where it may return to 0:
    // systemd sets LimitNICE=+0 for that, which takes CAP_SYS_RESOURCE; where even root lacks it
    // (some virtual machines), the limit stays 0 and the writer must stay at 0 with the rest.
    const niceLimit = (await c.exec(`grep '^Max nice priority' /proc/${pid}/limits`)).stdout;
    const mayReturn = Number(/priority\s+(\d+)/.exec(niceLimit)?.[1] ?? 0) >= 20;
    const nices = async () =>
      (await c.exec(`for t in /proc/${pid}/task/*; do cut -d')' -f2 "$t/stat" | cut -d' ' -f18; done`)).stdout
        .trim()
        .split("\n")
        .map(Number);
    const wanted = mayReturn ? 1 : 0;
    let seen: number[] = [];
    for (let i = 0; i < 50; i++) {
      seen = await nices();
      if (seen.filter((n) => n === 19).length === wanted) break;
      await sleep(100);
    }
    expect(
      seen.filter((n) => n === 19),
      `${niceLimit}; nice values: ${seen.join(" ")}`,
    ).toHaveLength(wanted);
    expect(seen.filter((n) => n !== 0 && n !== 19)).toEqual([]);
    if (!mayReturn) {
      // Not for want of trying: the unit's own system call filter lets a thread raise its nice value.
      const filter = (
        await c.exec("grep -E '^SystemCall' /etc/systemd/system/clawguard-shield.service")
      ).stdout
        .trim()
        .split("\n")
        .flatMap((line) => ["-p", line]);
      const probe = await c.exec([
        "systemd-run",
        "--wait",
        "--pipe",
        "-p",
        "User=clawguard-shield",
        ...filter,
        "/usr/local/bin/node",
        "-e",
        'const os = require("node:os"); os.setPriority(process.pid, 19); console.log(os.getPriority(process.pid));',
      ]);
      expect(probe.stdout.trim()).toBe("19");
    }

    // The requests are in the log, as the probe agent.
    const log = await c.exec(
      "clawguard shield log --config /etc/clawguard/shield.yaml --agent probe --json --limit 1000",
      { check: false },
    );
    expect(log.stdout.trim().split("\n").length, log.stderr).toBeGreaterThanOrEqual(200);
    const verified = await c.exec("clawguard shield verify-log --config /etc/clawguard/shield.yaml", {
      check: false,
    });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    await c.exec("systemctl stop clawguard-shield");
  });
});
