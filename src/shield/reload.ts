/**
 * Hot reload of shield.yaml: on SIGHUP and whenever the file changes. A reload either applies a
 * whole valid config or changes nothing: a file that fails validation leaves the running policy
 * in force (never an empty one) and the error is kept for the admin API and printed.
 */
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseShieldConfig, type ShieldConfig } from "./config.js";
import type { Authors } from "./membership.js";

export interface ReloadTarget {
  /** `authors`: who changed which agent, for the membership records (absent: nobody is named). */
  apply(
    cfg: ShieldConfig,
    trigger: string,
    authors?: Authors,
  ): { tunnelsClosed: number; restartNeeded: string[] };
  reloadFailed(trigger: string, error: string): void;
}

export interface ReloaderOptions {
  /** Where a failed or partial reload is reported; stderr by default. */
  warn?: (message: string) => void;
  /** Quiet period after the last change event before reading the file (editors write in steps). */
  debounceMs?: number;
  /**
   * Who made the agents' changes in the file whose text has this SHA-256 (the membership
   * journal); it may not fail a reload, so whatever it throws only loses the names.
   */
  authors?: (sha256: string) => Promise<Authors>;
}

export type ReloadOutcome =
  | { ok: true; changed: boolean; tunnelsClosed: number; restartNeeded: string[] }
  | { ok: false; error: string };

export class ConfigReloader {
  private lastHash: string | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly warn: (message: string) => void;

  constructor(
    readonly file: string,
    private readonly target: ReloadTarget,
    private readonly opts: ReloaderOptions = {},
  ) {
    this.warn = opts.warn ?? ((m) => process.stderr.write(`clawguard shield: ${m}\n`));
  }

  /** The text the running policy came from, so that a write of the same bytes is not a reload. */
  loaded(text: string): void {
    this.lastHash = digest(text);
  }

  /**
   * Read, validate and apply the file. `force` applies even an unchanged file (SIGHUP means
   * "do it"); a change event with identical bytes does nothing.
   */
  reload(trigger: string, force = false): Promise<ReloadOutcome> {
    return this.exclusive(async () => {
      let text: string;
      try {
        text = await readFile(this.file, "utf8");
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? String(e);
        return this.fail(
          trigger,
          `${this.file}: cannot read the config (${code}); the running policy stays in force`,
        );
      }
      const hash = digest(text);
      if (!force && hash === this.lastHash)
        return { ok: true, changed: false, tunnelsClosed: 0, restartNeeded: [] };
      let cfg: ShieldConfig;
      try {
        cfg = parseShieldConfig(text, this.file);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        return this.fail(
          trigger,
          `${msg}\nthe running policy stays in force; fix the file and save it again`,
        );
      }
      const authors = this.opts.authors
        ? await this.opts.authors(hash).catch((): Authors => () => null)
        : undefined;
      try {
        const r = this.target.apply(cfg, trigger, authors);
        this.lastHash = hash;
        if (r.restartNeeded.length > 0) {
          this.warn(`reloaded ${this.file}; changes to ${r.restartNeeded.join(", ")} apply after a restart`);
        }
        return { ok: true, changed: true, ...r };
      } catch (e) {
        return this.fail(trigger, `${this.file}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  /** Run `fn` after every earlier reload or edit has finished: one writer of the policy at a time. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Watch the file's directory, not the file: editors and atomic writers replace the file by
   * renaming, which a watch on the old inode would never see again.
   */
  watch(): void {
    if (this.watcher) return;
    const dir = path.dirname(path.resolve(this.file));
    const base = path.basename(this.file);
    const debounce = this.opts.debounceMs ?? 200;
    this.watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && name !== base) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.reload("file change");
      }, debounce);
    });
    this.watcher.on("error", (e) => this.warn(`watching ${dir} failed (${e.message}); reload with SIGHUP`));
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private fail(trigger: string, error: string): ReloadOutcome {
    this.target.reloadFailed(trigger, error);
    this.warn(`reload (${trigger}) failed: ${error}`);
    return { ok: false, error };
  }
}

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
