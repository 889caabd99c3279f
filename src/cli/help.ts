import type { Command } from "commander";

/**
 * What `--help` adds to every command: its exit codes and one example a person can type as it
 * stands (a test parses each against the real command line). A command with no entry here has
 * no help to show it, and the test says which.
 */

interface HelpEntry {
  /** Exit codes besides 0 and 2, which every command shares. */
  codes: Array<[code: number, meaning: string]>;
  example: string;
}

const ZERO = "done";

export const HELP: Record<string, HelpEntry & { zero?: string }> = {
  audit: {
    zero: "no check failed at or above --fail-on (waived ones aside)",
    codes: [[1, "a check failed or could not run at or above --fail-on"]],
    example: "clawguard audit --skip openclaw --fail-on medium",
  },
  checks: { codes: [], example: "clawguard checks --json" },
  shield: { codes: [], example: "clawguard shield check --config /etc/clawguard/shield.yaml" },
  "shield run": { codes: [], example: "clawguard shield run --config /etc/clawguard/shield.yaml" },
  "shield check": {
    zero: "the config is valid, or every destination is allowed",
    codes: [[1, "a destination is denied, an expectation does not hold, or --strict and a warning"]],
    example: "clawguard shield check --config shield.yaml --agent scout https://api.openai.com/v1",
  },
  "shield log": { codes: [], example: "clawguard shield log --config shield.yaml --follow" },
  "shield verify-log": {
    zero: "the hash chain is whole",
    codes: [[1, "a record was changed or removed"]],
    example: "clawguard shield verify-log --config shield.yaml",
  },
  "shield status": { codes: [], example: "clawguard shield status --config shield.yaml" },
  "shield agents": { codes: [], example: "clawguard shield agents --config shield.yaml" },
  "shield agents list": { codes: [], example: "clawguard shield agents list --config shield.yaml --json" },
  "shield agents add": {
    codes: [],
    example: "clawguard shield agents add scout --tier crew --config /etc/clawguard/shield.yaml",
  },
  "shield reload": { codes: [], example: "clawguard shield reload --config shield.yaml" },
  "shield mode": { codes: [], example: "clawguard shield mode lockdown --config shield.yaml --agent scout" },
  "shield rules": { codes: [], example: "clawguard shield rules list --config shield.yaml" },
  "shield rules list": { codes: [], example: "clawguard shield rules list --config shield.yaml" },
  "shield rules add": {
    codes: [],
    example: "clawguard shield rules add allow api.openai.com --config shield.yaml --tier crew",
  },
  "shield rules remove": {
    codes: [],
    example: "clawguard shield rules remove deny pastebin.com --config shield.yaml",
  },
  "shield install": { codes: [], example: "clawguard shield install --config-dir /etc/clawguard" },
  "shield gateway": {
    zero: "planned, applied, or (--verify) the gateway holds",
    codes: [[1, "--verify: the gateway does not hold"]],
    example: "clawguard shield gateway --config shield.yaml --apply",
  },
  "shield gateway rollback": {
    codes: [],
    example: "clawguard shield gateway rollback",
  },
  lockdown: {
    zero: "planned, applied, or (--verify) the lockdown holds",
    codes: [[1, "--verify: something leaves other than through the shield"]],
    example: "clawguard lockdown --shield 203.0.113.10:3128 --apply",
  },
  "lockdown rollback": { codes: [], example: "clawguard lockdown rollback" },
  harden: {
    zero: "planned, or applied with the gateway healthy",
    codes: [[1, "the apply failed or the gateway did not come up (the run was undone)"]],
    example: "clawguard harden --shield 10.0.0.1:3128 --apply",
  },
  rollback: {
    codes: [[1, "some of the run could not be put back (each problem is named)"]],
    example: "clawguard rollback --list",
  },
  "cloud-init": {
    codes: [],
    example:
      "clawguard cloud-init --package https://files.example/clawguard-0.1.0.tgz --profile profile.yaml",
  },
  "shield enroll": {
    codes: [],
    example: "clawguard shield enroll scout --config /etc/clawguard/shield.yaml --fleet acme",
  },
  "shield revoke": {
    codes: [],
    example: "clawguard shield revoke scout --config /etc/clawguard/shield.yaml",
  },
  "shield wireguard-sync": {
    codes: [[1, "--once: the config or the interface could not be brought in step"]],
    example: "clawguard shield wireguard-sync --config /etc/clawguard/shield.yaml --once",
  },
  "shield nodes": { codes: [], example: "clawguard shield nodes --config shield.yaml" },
  "shield move": { codes: [], example: "clawguard shield move scout --to shield-b --config shield.yaml" },
  "shield drain": { codes: [], example: "clawguard shield drain shield-a --config shield.yaml" },
  "shield operators": { codes: [], example: "clawguard shield operators list --config shield.yaml" },
  "shield operators list": { codes: [], example: "clawguard shield operators list --config shield.yaml" },
  "shield operators add": {
    codes: [],
    example: "clawguard shield operators add alice --role operator --fleet acme --config shield.yaml",
  },
  "shield operators remove": {
    codes: [],
    example: "clawguard shield operators remove alice --config shield.yaml",
  },
  "shield ca": { codes: [], example: "clawguard shield ca init --config /etc/clawguard/shield.yaml" },
  "shield ca init": { codes: [], example: "clawguard shield ca init --config /etc/clawguard/shield.yaml" },
  "shield grant": {
    codes: [],
    example:
      "clawguard shield grant scout --key ~/.ssh/id_ed25519.pub --for 2h --as deploy --reason deploy --config shield.yaml",
  },
  "shield grants": { codes: [], example: "clawguard shield grants --config shield.yaml" },
  "shield revoke-grant": { codes: [], example: "clawguard shield revoke-grant 17 --config shield.yaml" },
  "lockdown keygen": { codes: [], example: "clawguard lockdown keygen" },
  "ssh-ca": { codes: [], example: "clawguard ssh-ca fetch-krl --from http://10.77.0.1:3129/ssh/krl" },
  "ssh-ca fetch-krl": {
    codes: [],
    example: "clawguard ssh-ca fetch-krl --from http://10.77.0.1:3129/ssh/krl --json",
  },
  fleet: { codes: [], example: "clawguard fleet audit -i hosts.ini" },
  "fleet audit": {
    zero: "every host reached, none failing a check at or above --fail-on",
    codes: [[1, "a host failed a check at or above --fail-on, or could not be audited"]],
    example: "clawguard fleet audit -i hosts.ini --limit web --html fleet.html",
  },
  "fleet harden": {
    zero: "planned, or applied on every host with each one verified",
    codes: [[1, "a host failed (it was put back), or was not reached or not touched"]],
    example: "clawguard fleet harden -i hosts.ini --apply --serial 1 --max-fail 0",
  },
  "fleet lockdown": {
    zero: "planned, or applied on every host",
    codes: [[1, "a host failed (it was put back), or was not reached or not touched"]],
    example: "clawguard fleet lockdown -i hosts.ini --shield 203.0.113.10:3128 --apply",
  },
  "fleet rollback": {
    codes: [[1, "a host could not be put back (each is named)"]],
    example: "clawguard fleet rollback 20261207T010000Z-harden",
  },
  "fleet history": { codes: [], example: "clawguard fleet history" },
  "fleet diff": {
    codes: [[1, "a host regressed or became unreachable"]],
    example: "clawguard fleet diff",
  },
  completion: { codes: [], example: "clawguard completion bash > /etc/bash_completion.d/clawguard" },
};

/** `shield rules add` for a command below the program. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

function helpText(e: HelpEntry & { zero?: string }): string {
  const codes: Array<[number, string]> = [
    [0, e.zero ?? ZERO],
    ...e.codes,
    [2, "usage, config or runtime error"],
  ];
  return [
    "",
    "Exit codes:",
    ...codes.sort((a, b) => a[0] - b[0]).map(([c, m]) => `  ${c}  ${m}`),
    "",
    "Example:",
    `  ${e.example}`,
  ].join("\n");
}

/** Adds exit codes and an example to the help of every command that has an entry. */
export function addHelp(program: Command): void {
  const walk = (cmd: Command) => {
    for (const sub of cmd.commands) {
      const entry = HELP[commandPath(sub)];
      if (entry) sub.addHelpText("after", helpText(entry));
      walk(sub);
    }
  };
  walk(program);
}
