import { appendFileSync } from "node:fs";
import path from "node:path";
import { loadFixture } from "../helpers/fixture.js";

/** The guide's server, with the packages harden would install already there (apt cannot run in a copy). */
export function classicGuide(): string {
  const root = loadFixture("classic-guide");
  appendFileSync(
    path.join(root, "var/lib/dpkg/status"),
    "\nPackage: python3-systemd\nStatus: install ok installed\nVersion: 235-1\n\nPackage: unattended-upgrades\nStatus: install ok installed\nVersion: 2.9.1\n",
  );
  return root;
}
