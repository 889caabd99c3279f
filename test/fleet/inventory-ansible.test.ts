/**
 * Differential: the inventory reader and --limit against Ansible's own answers for the same
 * files (recorded by record-ansible.ts; asked again live where Ansible is installed).
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ClawguardError } from "../../src/errors.js";
import { allHosts, hostVars } from "../../src/fleet/inventory/graph.js";
import { loadInventory } from "../../src/fleet/inventory/load.js";
import type { Inventory } from "../../src/fleet/inventory/model.js";
import { selectHosts } from "../../src/fleet/limit.js";
import {
  ansibleInstalled,
  ansibleList,
  ansibleListHosts,
  CASES,
  FIXTURES,
  normalise,
  readRecording,
  type AnsibleList,
  type ListHosts,
} from "./ansible.js";

/** Our reading of an inventory in the shape of `ansible-inventory --list`. */
function asAnsibleList(inv: Inventory): AnsibleList {
  const out: AnsibleList = { _meta: { hostvars: {} } };
  for (const g of inv.groups.values()) {
    const entry: { hosts?: string[]; children?: string[] } = {};
    if (g.name !== "all" && g.hosts.length) entry.hosts = g.hosts;
    if (g.children.length) entry.children = g.children;
    if (entry.hosts || entry.children) out[g.name] = entry;
  }
  for (const h of allHosts(inv)) {
    const vars = hostVars(inv, h);
    if (Object.keys(vars).length) out._meta.hostvars[h] = vars;
  }
  return out;
}

function ourListHosts(inv: Inventory, pattern: string): ListHosts {
  try {
    return { hosts: selectHosts(inv, pattern) };
  } catch (e) {
    if (e instanceof ClawguardError && e.code === "CG_USAGE") return { refused: e.message };
    throw e;
  }
}

/** Ansible's ignored terms and failures are refusals here; hosts must match in order. */
function expectSameSelection(ours: ListHosts, theirs: ListHosts, pattern: string): void {
  if ("refused" in theirs) expect(ours, pattern).toHaveProperty("refused");
  else expect(ours, pattern).toEqual(theirs);
}

describe.each(CASES)("inventory $name read as Ansible reads it", (c) => {
  const file = path.join(FIXTURES, c.file);

  it("groups, children and every host's vars match ansible-inventory --list", async () => {
    const inv = await loadInventory(file);
    expect(normalise(asAnsibleList(inv))).toEqual(normalise(readRecording(c).list));
  });

  it("--limit selects what ansible --list-hosts selects, in its order", async () => {
    const inv = await loadInventory(file);
    const recorded = readRecording(c).limits;
    expect(Object.keys(recorded).sort()).toEqual([...c.patterns].sort());
    for (const p of c.patterns) expectSameSelection(ourListHosts(inv, p), recorded[p]!, p);
  });
});

// Asking Ansible takes about a second a call here, so the live run checks every listing and
// the first pattern of each inventory; the recordings hold the rest.
describe("the recordings are what the installed Ansible says", { timeout: 120_000 }, async () => {
  const installed = await ansibleInstalled();
  it.skipIf(!installed).each(CASES)("$name", async (c) => {
    const file = path.join(FIXTURES, c.file);
    const rec = readRecording(c);
    const [list, first] = await Promise.all([ansibleList(file), ansibleListHosts(file, c.patterns[0]!)]);
    expect(normalise(list)).toEqual(normalise(rec.list));
    expect(first).toEqual(rec.limits[c.patterns[0]!]);
    expectSameSelection(ourListHosts(await loadInventory(file), c.patterns[0]!), first, c.patterns[0]!);
  });
});
