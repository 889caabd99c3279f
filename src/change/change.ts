import type { Ruleset } from "./ruleset.js";

/**
 * One step of a plan (harden's, lockdown's). Every change names the finding ids it fixes;
 * `note` tells the operator something the change itself does not show (comments lost, a
 * restart needed).
 */
interface Base {
  fixes: string[];
  note?: string;
  /**
   * Part of moving the gateway (its user, state dir, unit, config): undone together when the
   * gateway does not answer under the new unit.
   */
  gateway?: boolean;
}

export type Change =
  | (Base & {
      kind: "file";
      path: string;
      content: string;
      mode: number;
      owner: string;
      group: string;
      /** A tree another user can write: the write is refused if it would land outside it. */
      within?: string;
    })
  | (Base & { kind: "mkdir"; path: string; mode: number; owner: string; group: string })
  | (Base & {
      kind: "command";
      argv: string[];
      undo?: string[];
      /**
       * Makes a service re-read files (daemon-reload, reload ssh): rollback runs it again after
       * the files are restored; its `undo`, if any, runs in its place on the way back.
       */
      refresh?: boolean;
      /** Needed only when one of these paths changes: dropped when they all already hold. */
      onlyIf?: string[];
      /** Acts on the running system (mount, ufw, systemctl): meaningless on a mounted image. */
      live?: boolean;
      /**
       * Run `undo` at the very end of a rollback, after the files are back and services re-read
       * them (e.g. start the gateway that was stopped so its state dir could be moved).
       */
      undoLast?: boolean;
    })
  | (Base & { kind: "package"; names: string[] })
  | (Base & { kind: "move"; from: string; to: string })
  /**
   * `optional`: the path may be gone by the time the change runs (a file a running program
   * created and deleted since the plan was made); then there is nothing to do. `within`: a tree
   * another user can write; the change is refused if it would reach outside it (see Writer).
   */
  | (Base & { kind: "chmod"; path: string; mode: number; optional?: boolean; within?: string })
  | (Base & {
      kind: "chown";
      path: string;
      owner: string;
      group: string;
      optional?: boolean;
      within?: string;
    })
  /**
   * The directory and everything under it (symlinks never followed, and left as they are),
   * walked when the change runs, so entries created or deleted since the plan are handled;
   * previous owners are journaled entry by entry.
   */
  | (Base & { kind: "chown-tree"; path: string; owner: string; group: string })
  | (Base & { kind: "remove"; path: string })
  /** A symbolic link, replacing what is at `path`; directories made for it get `owner`. */
  | (Base & { kind: "symlink"; path: string; target: string; owner: string; group: string })
  /**
   * Start or restart a systemd unit. Rollback stops it when it was not running before, and
   * restarts it once the files are back when it was, so that it runs as it did.
   */
  | (Base & { kind: "service"; unit: string })
  /**
   * Load a ruleset from its persisted files into the kernel of the network namespace clawguard
   * runs in. Rollback removes it, or loads the restored files again when it was loaded before.
   */
  | (Base & { kind: "ruleset"; ruleset: Ruleset });

export type ChangeKind = Change["kind"];

export function octal(mode: number): string {
  return "0" + (mode & 0o7777).toString(8).padStart(3, "0");
}

/** A shell word a person can paste. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** One line a person reads: what the change does, in the words of the command they would type. */
export function describeChange(c: Change): string {
  switch (c.kind) {
    case "file":
      return `write ${c.path} (${octal(c.mode)} ${c.owner}:${c.group})`;
    case "mkdir":
      return `mkdir -p -m ${octal(c.mode)} ${shellQuote(c.path)} && chown ${c.owner}:${c.group} ${shellQuote(c.path)}`;
    case "command":
      return c.argv.map(shellQuote).join(" ");
    case "package":
      return `apt-get install -y ${c.names.join(" ")}`;
    case "move":
      return `mv ${shellQuote(c.from)} ${shellQuote(c.to)}`;
    case "chmod":
      return `chmod ${octal(c.mode)} ${shellQuote(c.path)}`;
    case "chown":
      return `chown ${c.owner}:${c.group} ${shellQuote(c.path)}`;
    case "chown-tree":
      return `chown -R ${c.owner}:${c.group} ${shellQuote(c.path)}`;
    case "remove":
      return `rm ${shellQuote(c.path)}`;
    case "symlink":
      return `ln -sfn ${shellQuote(c.target)} ${shellQuote(c.path)}`;
    case "service":
      return `systemctl restart ${shellQuote(c.unit)}`;
    case "ruleset":
      return c.ruleset.backend === "nft"
        ? `nft -f ${shellQuote(c.ruleset.file)}`
        : `iptables-restore --noflush ${shellQuote(c.ruleset.files[4])} && ip6tables-restore --noflush ${shellQuote(c.ruleset.files[6])}`;
  }
}

/** Changes that act on the running system rather than on files: undone by acting on it again. */
export function actsOnRunningSystem(c: Change): boolean {
  return c.kind === "command" || c.kind === "service" || c.kind === "ruleset";
}

/** Paths a change touches, for filtering and for ordering checks. */
export function changePaths(c: Change): string[] {
  switch (c.kind) {
    case "move":
      return [c.from, c.to];
    case "command":
    case "package":
    case "service":
    case "ruleset":
      return [];
    default:
      return [c.path];
  }
}
