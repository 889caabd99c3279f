import type { FactContext } from "../context.js";
import { HostError, type Problem } from "../errors.js";
import { gather, MalformedError, ok, toProblem, type Fact } from "../fact.js";
import { gatherPackages } from "./packages.js";

export const DOCKER_DAEMON_JSON = "/etc/docker/daemon.json";
const DOCKER_PACKAGES = ["docker.io", "docker-ce", "moby-engine", "podman-docker"];
const DOCKERD = ["/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"];

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

/** Whether Docker is installed and whether it manages iptables (and so publishes ports past ufw). */
export function gatherDocker(ctx: FactContext): Promise<Fact<DockerFact>> {
  return gather(DOCKER_DAEMON_JSON, async () => {
    const problems: Problem[] = [];
    const sources: string[] = [];
    const pkgs = await ctx.get(gatherPackages);
    let installedBy: string | undefined;
    if (pkgs.status === "ok") {
      const p = DOCKER_PACKAGES.find((n) => pkgs.value.installed.has(n));
      if (p) installedBy = `package ${p}`;
      sources.push("/var/lib/dpkg/status");
    } else if (pkgs.status === "error") problems.push(...pkgs.problems);
    if (!installedBy) {
      for (const bin of DOCKERD) if (await ctx.host.stat(bin)) installedBy ??= bin;
    }
    let iptables = true;
    let iptablesSource = "Docker default (no daemon.json)";
    try {
      const parsed = parseDaemonJson(await ctx.host.readFile(DOCKER_DAEMON_JSON));
      sources.push(DOCKER_DAEMON_JSON);
      if (parsed.iptables !== undefined) {
        iptables = parsed.iptables;
        iptablesSource = `${DOCKER_DAEMON_JSON} "iptables": ${parsed.iptables}`;
      } else iptablesSource = `${DOCKER_DAEMON_JSON} has no "iptables" (default true)`;
    } catch (err) {
      if (!(err instanceof HostError && err.problem.kind === "missing"))
        problems.push(toProblem(DOCKER_DAEMON_JSON, err));
    }
    return ok({ installedBy, iptables, iptablesSource }, sources, problems);
  });
}
