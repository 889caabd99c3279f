/**
 * `clawguard audit --json` against `lynis audit system --quick` on the same booted Debian 12:
 * both run inside the container, timed there (so entering the container costs neither), and the
 * medians are compared. Run as root: npm run bench:audit [-- --runs N --lynis-runs M]
 */
import { parseArgs } from "node:util";
import { auditIn, Container, installClawguard, isRoot } from "../e2e/lib/index.js";

const TARGET_RATIO = 50;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Wall time of `command` inside the container, in ms, measured by the container's own clock. */
async function timeInside(ct: Container, command: string): Promise<number> {
  const script = `s=$(date +%s%N); ${command} >/dev/null 2>&1; rc=$?; e=$(date +%s%N); echo "$rc $(( (e - s) / 1000 ))"`;
  const r = await ct.exec(["sh", "-c", script], { timeoutMs: 900_000 });
  const [rc, us] = r.stdout.trim().split(" ").map(Number);
  // audit exits 1 when it finds something (a stock system has findings); lynis exits 0.
  if (rc === undefined || us === undefined || rc > 1)
    throw new Error(`${command} exited ${rc} inside ${ct.name}`);
  return us / 1000;
}

function fmt(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { runs: { type: "string", default: "7" }, "lynis-runs": { type: "string", default: "2" } },
  });
  const runs = Math.max(1, Number(values.runs));
  const lynisRuns = Math.max(2, Number(values["lynis-runs"]));
  if (!isRoot) {
    process.stderr.write("bench:audit boots a container: run it as root\n");
    return 2;
  }
  const ct = await Container.boot({ tag: "bench", log: (s) => process.stderr.write(`${s}\n`) });
  try {
    await installClawguard(ct);
    await ct.aptInstall("lynis");
    // The test network leads nowhere, so lynis's `apt-get update` and update check would wait out
    // connect timeouts (minutes) that a VPS with a mirror never sees. Without a default route
    // they fail at once, which is the closer stand-in; clawguard never touches the network.
    await ct.exec(["ip", "route", "del", "default"]);
    const lynisVersion = (await ct.exec(["lynis", "show", "version"])).stdout.trim();
    const { report } = await auditIn(ct);
    process.stderr.write(
      `clawguard: ${report.findings.length} findings over ${report.layers.length} layers; lynis ${lynisVersion}\n`,
    );

    // One untimed run each warms the page cache, as on a server that has been up for a while.
    await timeInside(ct, "clawguard audit --json");
    const ours: number[] = [];
    for (let i = 0; i < runs; i++) {
      ours.push(await timeInside(ct, "clawguard audit --json"));
      process.stderr.write(`clawguard audit run ${i + 1}/${runs}: ${fmt(ours[i] ?? NaN)}\n`);
    }
    const theirs: number[] = [];
    for (let i = 0; i < lynisRuns; i++) {
      theirs.push(await timeInside(ct, "lynis audit system --quick --no-colors"));
      process.stderr.write(`lynis run ${i + 1}/${lynisRuns}: ${fmt(theirs[i] ?? NaN)}\n`);
    }

    const a = median(ours);
    const b = median(theirs);
    const ratio = b / a;
    process.stdout.write(
      [
        `clawguard audit --json:            median ${fmt(a)} of ${runs} runs (${ours.map(fmt).join(", ")})`,
        `lynis audit system --quick:        median ${fmt(b)} of ${lynisRuns} runs (${theirs.map(fmt).join(", ")})`,
        `ratio: clawguard is ${ratio.toFixed(0)}x faster (target ${TARGET_RATIO}x: ${ratio >= TARGET_RATIO ? "met" : "NOT met"})`,
        "",
        `| Debian 12 (systemd-nspawn, ${report.findings.length} findings) | clawguard audit ${fmt(a)} | lynis ${lynisVersion} --quick ${fmt(b)} | ${ratio.toFixed(0)}x |`,
        "",
      ].join("\n"),
    );
    return 0;
  } finally {
    await ct.destroy();
  }
}

process.exitCode = await main();
