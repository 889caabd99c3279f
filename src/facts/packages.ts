import { entry, table } from "./record.js";

export const DPKG_STATUS = "/var/lib/dpkg/status";

export interface PackagesFact {
  /** Installed packages (dpkg status "install ok installed"), name -> version. */
  installed: Record<string, string>;
}

export function parseDpkgStatus(text: string): Record<string, string> {
  const installed = table<string>();
  for (const para of text.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)/m.exec(para)?.[1];
    const status = /^Status:\s*(.+)$/m.exec(para)?.[1]?.trim();
    const version = /^Version:\s*(\S+)/m.exec(para)?.[1] ?? "";
    if (name && status === "install ok installed") installed[name] = version;
  }
  return installed;
}

/** The installed version of `name`, or undefined when it is not installed. */
export function installedVersion(p: PackagesFact, name: string): string | undefined {
  return entry(p.installed, name);
}

export function isInstalled(p: PackagesFact, name: string): boolean {
  return Object.hasOwn(p.installed, name);
}
