/**
 * flock(2) locks, as the SPANK stub and the collector take them: holders of
 * an entry take its lock shared, the collector tries it exclusive.
 *
 * The collector and `reuse --uid` may run as root in directories a user can
 * write, so nothing here follows a symlink planted in a lock file's place:
 * new files are created with O_EXCL, and an existing file is used only when
 * the file opened is the regular file that lstat(2) saw.
 */
import { type Kind, Opened, openPath, openRegular } from "../os/files.ts";
import * as libc from "../os/libc.ts";

/** Opens a lock file, creating it (O_EXCL) with `mode` when it does not exist yet. */
export async function openLockFile(path: string, mode = 0o644): Promise<Deno.FsFile> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await Deno.open(path, { read: true, write: true, createNew: true, mode });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const existing = await openRegular(path);
    if (existing) return existing;
  }
  throw new Error(`${path}: not a regular file`);
}

/**
 * Takes an exclusive lock on a lock file that others may unlink (the collector
 * removes an evicted entry's creation lock), waiting for it: once locked, the
 * file must still be the one at `path`, or we start again on the new one.
 * The file is in a directory its user can write (root's `reuse --uid` takes
 * it there): it is created with O_EXCL, or opened without following a symlink
 * or waiting on a FIFO (lib/os/files.ts); while its user holds a lease on it,
 * we wait as for any other holder. Without `wait`, `undefined` when someone
 * else holds it.
 */
export async function lockExclusive(path: string): Promise<Opened>;
export async function lockExclusive(path: string, wait: boolean): Promise<Opened | undefined>;
export async function lockExclusive(path: string, wait = true): Promise<Opened | undefined> {
  for (let refused = 0;;) {
    let file: Opened | "busy" | "missing";
    try {
      const fd = libc.openAt(libc.AT_FDCWD, path, CREATE_FLAGS, 0o644);
      file = new Opened(fd, libc.stat(fd));
    } catch (error) {
      if (!(error instanceof libc.OsError) || error.code !== "EEXIST") throw error;
      // Read-write, as it was created: a creator writes its record into its creation lock.
      file = openPath(path, "file", true);
    }
    if (file === "busy" && !wait) return undefined;
    if (file === "busy") {
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    if (file === "missing") {
      if (++refused >= 3) throw new Error(`${path}: not a regular file`);
      continue;
    }
    if (!wait && !file.tryLock(true)) {
      file.close();
      return undefined;
    }
    try {
      if (wait) await libc.flockExclusive(file.fd);
    } catch (error) {
      file.close();
      throw error;
    }
    const current = await Deno.lstat(path).catch(() => undefined);
    if (current && BigInt(current.ino ?? -1) === file.info.ino && current.dev === file.info.dev) return file;
    file.close();
  }
}

const CREATE_FLAGS = libc.O_RDWR | libc.O_CREAT | libc.O_EXCL | libc.O_NOFOLLOW | libc.O_NONBLOCK;

/**
 * Tries an exclusive lock without waiting, on a lock file (or directory) in a
 * directory a user can write: never through a symlink, never waiting on a
 * FIFO or a lease (lib/os/files.ts). Returns the open descriptor while holding
 * it, `"busy"` when someone holds it (or a lease stands in the way),
 * `"missing"` when there is no regular file (or directory) at `path`.
 */
export function tryLockExclusive(path: string, kind: Kind = "file"): Opened | "busy" | "missing" {
  const opened = openPath(path, kind);
  if (typeof opened === "string") return opened;
  if (opened.tryLock(true)) return opened;
  opened.close();
  return "busy";
}

/**
 * Whether someone holds the lock file (or directory) at `path` now, as a collector would
 * find it: a lease counts as held, nothing at `path` as not held (a dead holder holds nothing).
 */
export function isHeld(path: string, kind: Kind = "file"): boolean {
  // Nothing there, the usual answer on a cold step's path: said without loading the C library.
  try {
    Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
  }
  const lock = tryLockExclusive(path, kind);
  if (lock === "busy") return true;
  if (lock !== "missing") lock.close();
  return false;
}
