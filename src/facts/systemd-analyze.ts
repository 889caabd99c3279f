import type { Problem } from "./fact.js";

export interface ExposureScore {
  score: number;
  /** systemd's word for it: OK, MEDIUM, EXPOSED, UNSAFE... */
  rating: string;
  /** The line it printed, without the arrow and emoji. */
  line: string;
  command: string;
}

export type ExposureResult = { ok: ExposureScore } | { problem: Problem } | { skip: string };

/** The overall line of `systemd-analyze security`: "→ Overall exposure level for x.service: 9.6 UNSAFE 😨". */
export function parseExposure(stdout: string): { score: number; rating: string; line: string } | undefined {
  const m = /Overall exposure level for (\S+): (\d+(?:\.\d+)?) ([A-Z]+)/.exec(stdout);
  if (!m) return undefined;
  return { score: Number(m[2]), rating: m[3]!, line: `Overall exposure level for ${m[1]}: ${m[2]} ${m[3]}` };
}
