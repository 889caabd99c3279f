import { randomBytes } from "node:crypto";
import { constants as fsConstants, promises as fs } from "node:fs";
import path from "node:path";
import { HostError, problemFromFsError } from "./errors.js";
import type { Host } from "./host.js";

export interface Ownership {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * The only way harden changes a system: a few narrow operations, rooted like the Host that
 * reads it (a live system at "/", a mounted image or a fixture copy elsewhere). Paths are as
 * seen on that system; the last component is never followed, so a symlink is replaced, not
 * written through.
 */
export interface Writer {
  readonly root: string;
  /** Atomic: a temp file in the same directory, fsynced, renamed over, directory fsynced. */
  writeFile(p: string, data: Buffer | string, own: Ownership): Promise<void>;
  /** writeFile inside a tree someone else can write, pinned like chmodWithin. */
  writeFileWithin(dir: string, p: string, data: Buffer | string, own: Ownership): Promise<void>;
  mkdir(p: string, own: Ownership): Promise<void>;
  chmod(p: string, mode: number): Promise<void>;
  chown(p: string, uid: number, gid: number): Promise<void>;
  /**
   * chmod and chown of `p` inside `dir`, a tree someone else can write (a service's state dir):
   * through a handle opened without following `p` itself, and only when that handle is at
   * `dir`'s place plus the rest of `p`. A directory swapped for a symbolic link between plan and
   * change cannot point the change at a file outside the tree.
   */
  chmodWithin(dir: string, p: string, mode: number): Promise<void>;
  chownWithin(dir: string, p: string, uid: number, gid: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** A file, a symlink, or an empty directory. */
  remove(p: string): Promise<void>;
  symlink(target: string, p: string): Promise<void>;
  readlink(p: string): Promise<string>;
}

/** The writes a change may have to keep inside a tree someone else can write. */
export type ConfinedWrites = Pick<Writer, "writeFile" | "chmod" | "chown">;

/**
 * `writer`'s writeFile, chmod and chown, kept inside `dir` (the Within variants) when a tree is
 * given, and the plain ones when not.
 */
export function confinedTo(writer: Writer, dir: string | undefined): ConfinedWrites {
  if (dir === undefined) return writer;
  return {
    writeFile: (p, data, own) => writer.writeFileWithin(dir, p, data, own),
    chmod: (p, mode) => writer.chmodWithin(dir, p, mode),
    chown: (p, uid, gid) => writer.chownWithin(dir, p, uid, gid),
  };
}

/** Read-only, never the last link, never blocking on a FIFO, never a controlling terminal. */
const PINNED_FLAGS =
  fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY;
const PINNED_DIR_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_DIRECTORY;

/** Temp file in `dir`, fsynced, renamed over `name`, then `dir` fsynced. */
async function atomicWrite(dir: string, name: string, data: Buffer | string, own: Ownership): Promise<void> {
  const tmp = path.join(dir, `.${name}.clawguard-${randomBytes(4).toString("hex")}`);
  const fh = await fs.open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(data);
    await fh.chown(own.uid, own.gid);
    await fh.chmod(own.mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fs.rename(tmp, path.join(dir, name));
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

export class LocalWriter implements Writer {
  constructor(private readonly host: Host) {}

  get root(): string {
    return this.host.root;
  }

  private async real(p: string): Promise<string> {
    // Parents resolve inside the root; the last component stays as named.
    const parent = await this.host.resolve(path.posix.dirname(path.posix.resolve("/", p)));
    return path.join(parent, path.posix.basename(path.posix.resolve("/", p)));
  }

  private async wrap<T>(p: string, fn: (real: string) => Promise<T>): Promise<T> {
    const real = await this.real(p);
    try {
      return await fn(real);
    } catch (err) {
      throw new HostError(problemFromFsError(p, err));
    }
  }

  writeFile(p: string, data: Buffer | string, own: Ownership): Promise<void> {
    return this.wrap(p, (real) => atomicWrite(path.dirname(real), path.basename(real), data, own));
  }

  writeFileWithin(dir: string, p: string, data: Buffer | string, own: Ownership): Promise<void> {
    const abs = path.posix.resolve("/", p);
    // The directory is pinned; the temp file and the rename go through its handle, so a
    // directory swapped for a link after the check cannot redirect them.
    return this.pinned(dir, path.posix.dirname(abs), PINNED_DIR_FLAGS, (_fh, at) =>
      atomicWrite(at, path.posix.basename(abs), data, own),
    );
  }

  mkdir(p: string, own: Ownership): Promise<void> {
    return this.wrap(p, async (real) => {
      await fs.mkdir(real, { mode: 0o700 });
      await fs.chown(real, own.uid, own.gid);
      await fs.chmod(real, own.mode);
      await syncDir(path.dirname(real));
    });
  }

  chmod(p: string, mode: number): Promise<void> {
    return this.wrap(p, (real) => fs.chmod(real, mode));
  }

  chown(p: string, uid: number, gid: number): Promise<void> {
    return this.wrap(p, (real) => fs.lchown(real, uid, gid));
  }

  chmodWithin(dir: string, p: string, mode: number): Promise<void> {
    return this.pinned(dir, p, PINNED_FLAGS, (fh) => fh.chmod(mode));
  }

  chownWithin(dir: string, p: string, uid: number, gid: number): Promise<void> {
    return this.pinned(dir, p, PINNED_FLAGS, (fh) => fh.chown(uid, gid));
  }

  /**
   * Open `p` (inside `dir`) with `flags`, and run `fn` on the handle and on a path that reaches
   * the same inode through it, only when the kernel places the handle where the path says.
   */
  private async pinned(
    dir: string,
    p: string,
    flags: number,
    fn: (fh: fs.FileHandle, at: string) => Promise<void>,
  ): Promise<void> {
    const top = path.posix.resolve("/", dir);
    const rel = path.posix.relative(top, path.posix.resolve("/", p));
    if (rel.startsWith("..") || path.posix.isAbsolute(rel))
      throw new HostError({ kind: "io", source: p, message: `is not inside ${dir}` });
    // The tree's parent is trusted (its owner is not the tree's); everything below it is not.
    const parent = await fs.realpath(await this.host.resolve(path.posix.dirname(top)));
    const expected = path.join(parent, path.posix.basename(top), rel);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(expected, flags);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // O_NOFOLLOW meets a link: ELOOP, or ENOTDIR when a directory was asked for.
      if (
        code === "ELOOP" ||
        (code === "ENOTDIR" && (await fs.lstat(expected).catch(() => null))?.isSymbolicLink())
      )
        throw new HostError({ kind: "io", source: p, message: "is a symbolic link; left it alone" });
      throw new HostError(problemFromFsError(p, err));
    }
    try {
      const at = await fs.readlink(`/proc/self/fd/${fh.fd}`);
      // Deleted since it was opened (a program removing its temp file): as if never there.
      if (at === `${expected} (deleted)`)
        throw new HostError({ kind: "missing", source: p, message: "does not exist" });
      if (at !== expected)
        throw new HostError({
          kind: "io",
          source: p,
          message: `is reached through a symbolic link (it opened as ${at}); left it alone`,
        });
      await fn(fh, `/proc/self/fd/${fh.fd}`);
    } catch (err) {
      throw err instanceof HostError ? err : new HostError(problemFromFsError(p, err));
    } finally {
      await fh.close();
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const a = await this.real(from);
    const b = await this.real(to);
    try {
      await fs.rename(a, b);
    } catch (err) {
      throw new HostError(problemFromFsError(`${from} -> ${to}`, err));
    }
    await syncDir(path.dirname(a));
    await syncDir(path.dirname(b));
  }

  remove(p: string): Promise<void> {
    return this.wrap(p, async (real) => {
      const st = await fs.lstat(real);
      if (st.isDirectory()) await fs.rmdir(real);
      else await fs.unlink(real);
      await syncDir(path.dirname(real));
    });
  }

  symlink(target: string, p: string): Promise<void> {
    return this.wrap(p, async (real) => {
      await fs.symlink(target, real);
      await syncDir(path.dirname(real));
    });
  }

  readlink(p: string): Promise<string> {
    return this.wrap(p, (real) => fs.readlink(real));
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
