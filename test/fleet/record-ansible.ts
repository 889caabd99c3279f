/**
 * Save Ansible's answers for the fixture inventories (apt-get install ansible-core first):
 *   npx tsx test/fleet/record-ansible.ts
 * Run it after changing a fixture or a pattern in ansible.ts, and commit what it writes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { askAnsible, CASES, recordingPath } from "./ansible.js";

for (const c of CASES) {
  const rec = await askAnsible(c);
  mkdirSync(path.dirname(recordingPath(c)), { recursive: true });
  writeFileSync(recordingPath(c), JSON.stringify(rec, null, 2) + "\n");
  process.stdout.write(`${recordingPath(c)}: ${Object.keys(rec.limits).length} patterns\n`);
}
