import { DOCKER_DAEMON_JSON, parseDaemonJson, type DockerFact } from "../../facts/docker.js";
import { ok, type Fact, type Problem } from "../../facts/fact.js";
import { isInstalled } from "../../facts/packages.js";
import type { FactContext } from "../context.js";
import { isMissing, toProblem } from "../errors.js";
import { gather } from "./guard.js";

const DOCKER_PACKAGES = ["docker.io", "docker-ce", "moby-engine", "podman-docker"];
const DOCKERD = ["/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"];

/** Whether Docker is installed and whether it manages iptables (and so publishes ports past ufw). */
export function gatherDocker(ctx: FactContext): Promise<Fact<DockerFact>> {
  return gather(DOCKER_DAEMON_JSON, async () => {
    const problems: Problem[] = [];
    const sources: string[] = [];
    const pkgs = await ctx.get("packages");
    let installedBy: string | undefined;
    if (pkgs.status === "ok") {
      const p = DOCKER_PACKAGES.find((n) => isInstalled(pkgs.value, n));
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
      if (!isMissing(err)) problems.push(toProblem(DOCKER_DAEMON_JSON, err));
    }
    return ok({ installedBy, iptables, iptablesSource }, sources, problems);
  });
}
