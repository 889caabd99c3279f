/**
 * Ansible itself as the reference for inventories and --limit: the fixture inventories, the
 * patterns tried on each, and how to ask `ansible-inventory --list` and `ansible --list-hosts`
 * what they make of them. `record-ansible.ts` saves Ansible's answers next to the fixtures, so
 * the comparison runs where Ansible is not installed; where it is, the test asks it again.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/fleet");

export interface Case {
  name: string;
  file: string;
  patterns: string[];
}

export const CASES: Case[] = [
  {
    name: "groups",
    file: "inventories/groups/hosts.ini",
    patterns: [
      "prod",
      "prod:!db",
      "prod:&edge",
      "web*",
      "~^web0[12]",
      "web[1:2]",
      "db,stage",
      "!stage",
      "ungrouped",
      "web[9]",
      "web,nosuch",
    ],
  },
  {
    name: "nested",
    file: "inventories/nested/inventory.yml",
    patterns: ["data", "web:!canary", "web:&canary", "*.example.com:!db", "web[-1]", "all:!data", "nosuch"],
  },
  { name: "vars-dirs", file: "inventories/vars-dirs/hosts", patterns: ["w*", "all:!web", "d1,w2"] },
  {
    name: "ranges",
    file: "inventories/ranges/hosts.ini",
    patterns: ["mixed:!letters", "rack-?-1", "v6", "node0[37].lab", "letters[0]"],
  },
  {
    name: "priority",
    file: "inventories/priority/inventory.yaml",
    patterns: ["a_top", "&z_top", "h*:!deep"],
  },
];

/** What Ansible answered for one pattern: the hosts, or that it ignored a term or failed. */
export type ListHosts = { hosts: string[] } | { refused: string };

export interface Recording {
  list: AnsibleList;
  limits: Record<string, ListHosts>;
}

export interface AnsibleList {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  [group: string]: { hosts?: string[]; children?: string[] } | AnsibleList["_meta"];
}

function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { env: { ...process.env, ANSIBLE_NOCOLOR: "1", ANSIBLE_LOCALHOST_WARNING: "0" } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export async function ansibleInstalled(): Promise<boolean> {
  return (await run(["ansible-inventory", "--version"])).code === 0;
}

export async function ansibleList(file: string): Promise<AnsibleList> {
  const r = await run(["ansible-inventory", "-i", file, "--list"]);
  if (r.code !== 0) throw new Error(`ansible-inventory -i ${file} --list: ${r.stderr}`);
  return JSON.parse(r.stdout) as AnsibleList;
}

export async function ansibleListHosts(file: string, pattern: string): Promise<ListHosts> {
  const r = await run(["ansible", "-i", file, "all", "--limit", pattern, "--list-hosts"]);
  const ignored = /Could not match supplied host pattern, ignoring: (\S+)/.exec(r.stderr);
  if (ignored) return { refused: `no match for ${ignored[1]}` };
  if (r.code !== 0) return { refused: r.stderr.trim().split("\n").pop() ?? "failed" };
  const lines = r.stdout.split("\n").map((l) => l.trim());
  return { hosts: lines.slice(lines.findIndex((l) => /^hosts \(\d+\):$/.test(l)) + 1).filter(Boolean) };
}

export function recordingPath(c: Case): string {
  return path.join(FIXTURES, "ansible", `${c.name}.json`);
}

export function readRecording(c: Case): Recording {
  return JSON.parse(readFileSync(recordingPath(c), "utf8")) as Recording;
}

/** Ansible's answers for every pattern of `c`, a few at a time. */
export async function askAnsible(c: Case): Promise<Recording> {
  const file = path.join(FIXTURES, c.file);
  const limits: Record<string, ListHosts> = {};
  const queue = [...c.patterns];
  await Promise.all(
    [0, 1, 2].map(async () => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift())
        limits[p] = await ansibleListHosts(file, p);
    }),
  );
  return { list: await ansibleList(file), limits };
}

/** The list in a form that compares: each group's own hosts and children, sorted; the host vars. */
export function normalise(list: AnsibleList): unknown {
  const groups: Record<string, unknown> = {};
  for (const [name, g] of Object.entries(list)) {
    if (name === "_meta") continue;
    const { hosts, children } = g as { hosts?: string[]; children?: string[] };
    groups[name] = { hosts: [...(hosts ?? [])].sort(), children: [...(children ?? [])].sort() };
  }
  return { groups, hostvars: list._meta.hostvars };
}
