// Applies a plan and SIGKILLs itself at a given journal record: a crash the journal must survive.
import { readFileSync } from "node:fs";
import { applyPlan } from "../../src/change/apply.js";
import type { Change } from "../../src/change/change.js";
import { LocalHost } from "../../src/host/host.js";
import { LocalWriter } from "../../src/host/writer.js";

const [root, stateDir, planFile, killAt, killN] = process.argv.slice(2);
const host = new LocalHost(root!, { isRoot: false });
const plan = JSON.parse(readFileSync(planFile!, "utf8")) as Change[];
await applyPlan(host, new LocalWriter(host), plan, {
  stateDir,
  runId: "crashed",
  onRecord: (r) => {
    if (r.t === killAt && "n" in r && r.n === Number(killN)) process.kill(process.pid, "SIGKILL");
  },
});
