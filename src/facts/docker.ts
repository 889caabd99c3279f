import { MalformedError } from "./fact.js";

export const DOCKER_DAEMON_JSON = "/etc/docker/daemon.json";

export interface DockerFact {
  /** How Docker was found (a package or a dockerd binary), or undefined when it is not installed. */
  installedBy?: string;
  /** `"iptables"` in daemon.json; Docker's default is true (it writes its own NAT rules). */
  iptables: boolean;
  iptablesSource: string;
}

export function parseDaemonJson(text: string): { iptables?: boolean } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const pos = /position (\d+)/.exec(String(err))?.[1];
    const line = pos === undefined ? undefined : text.slice(0, Number(pos)).split("\n").length;
    throw new MalformedError(`not valid JSON: ${(err as Error).message}`, line);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new MalformedError("expected a JSON object", 1);
  const v = (doc as Record<string, unknown>).iptables;
  if (v !== undefined && typeof v !== "boolean") throw new MalformedError(`"iptables" must be true or false`);
  return { iptables: v };
}
