import type { SshdSetting } from "../facts/sshd.js";
import type { Evidence } from "./finding.js";

/** Where sshd took a setting from: its file and line, or OpenSSH's default. */
export function settingSource(s: SshdSetting): string {
  if (s.source === "default") return "OpenSSH default";
  return s.line !== undefined ? `${s.source} line ${s.line}` : s.source;
}

/** A setting as evidence: where it is, and the directive as sshd reads it. */
export function settingEvidence(s: SshdSetting, key: string): Evidence {
  return { source: settingSource(s), excerpt: `${key} ${s.value}` };
}
