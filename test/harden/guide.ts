import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadFixture } from "../helpers/fixture.js";

/**
 * A fixture copy harden can write to as the user running the tests. Without root every file
 * of the copy is ours, so "root" in its passwd and group is mapped to us too: files harden
 * gives to root:root get an owner this process may set.
 */
export function writableFixture(name: string): string {
  const root = loadFixture(name);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  if (uid !== 0) {
    for (const [file, re, to] of [
      ["etc/passwd", /^root:x:0:0:/m, `root:x:${uid}:${gid}:`],
      ["etc/group", /^root:x:0:/m, `root:x:${gid}:`],
    ] as const) {
      const p = path.join(root, file);
      writeFileSync(p, readFileSync(p, "utf8").replace(re, to));
    }
  }
  return root;
}

/** The guide's server, with the packages harden would install already there (apt cannot run in a copy). */
export function classicGuide(): string {
  const root = writableFixture("classic-guide");
  appendFileSync(
    path.join(root, "var/lib/dpkg/status"),
    "\nPackage: python3-systemd\nStatus: install ok installed\nVersion: 235-1\n\nPackage: unattended-upgrades\nStatus: install ok installed\nVersion: 2.9.1\n\nPackage: needrestart\nStatus: install ok installed\nVersion: 3.6-4\n",
  );
  return root;
}
