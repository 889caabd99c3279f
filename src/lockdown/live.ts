import { existsSync } from "node:fs";
import {
  defaultRunner,
  removeRuleset,
  runStep,
  rulesetLoaded,
  type Ruleset,
  type Runner,
  type Step,
} from "../change/ruleset.js";
import { IPT_CHAIN, NFT_FAMILY, NFT_TABLE } from "../render/nftables.js";
import { IPT_FILES, NFT_FILE, type Backend } from "./units.js";

/** The lockdown's rules as the change engine loads them, for the backend a plan chose. */
export function lockdownRuleset(backend: Backend): Ruleset {
  return backend === "nft"
    ? { backend: "nft", file: NFT_FILE, family: NFT_FAMILY, table: NFT_TABLE }
    : { backend: "iptables", files: IPT_FILES, chain: IPT_CHAIN };
}

const BOTH = [lockdownRuleset("nft"), lockdownRuleset("iptables")];

/** nft where it is installed; iptables only where it is not. */
export async function detectBackend(run: Runner = defaultRunner): Promise<Backend> {
  return (await runStep(run, ["nft", "--version"])).ok ? "nft" : "iptables";
}

/** Remove the lockdown's rules from this namespace, whichever backend loaded them. */
export async function removeAnyRules(run: Runner = defaultRunner): Promise<Step[]> {
  const steps: Step[] = [];
  for (const r of BOTH) steps.push(...(await removeRuleset(r, run)));
  return steps;
}

/** Whether the lockdown's rules are loaded in this namespace, and the command that says so. */
export async function rulesLoaded(
  run: Runner = defaultRunner,
): Promise<{ loaded: boolean; evidence: string }> {
  const nft = await rulesetLoaded(BOTH[0]!, run);
  if (nft.loaded) return nft;
  const ipt = await rulesetLoaded(BOTH[1]!, run);
  return ipt.loaded ? ipt : nft;
}

/** systemd manages this system: the live root with systemd as init. */
export function systemdRunning(root: string): boolean {
  return root === "/" && existsSync("/run/systemd/system");
}
