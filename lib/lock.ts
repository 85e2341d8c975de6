/**
 * flock(2) locks, as the SPANK stub and the collector take them: holders of
 * an entry take its lock shared, the collector tries it exclusive.
 *
 * The collector and `reuse --uid` may run as root in directories a user can
 * write, so nothing here follows a symlink planted in a lock file's place:
 * new files are created with O_EXCL, and an existing file is used only when
 * the file opened is the regular file that lstat(2) saw.
 */
import { type Kind, type Opened, openPath, openRegular } from "./files.ts";

/** Opens a lock file, creating it (O_EXCL) with `mode` when it does not exist yet. */
export async function openLockFile(path: string, mode = 0o644): Promise<Deno.FsFile> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await Deno.open(path, { read: true, write: true, createNew: true, mode });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    // Read-write, as it was created: a creator writes its record into its creation lock.
    const existing = await openRegular(path, "file", true);
    if (existing) return existing;
  }
  throw new Error(`${path}: not a regular file`);
}

/**
 * Takes an exclusive lock on a lock file that others may unlink (the collector
 * removes an evicted entry's creation lock): once locked, the file must still
 * be the one at `path`, or we start again on the new one. Without `wait`,
 * `undefined` when someone else holds it.
 */
export async function lockExclusive(path: string): Promise<Deno.FsFile>;
export async function lockExclusive(path: string, wait: boolean): Promise<Deno.FsFile | undefined>;
export async function lockExclusive(path: string, wait = true): Promise<Deno.FsFile | undefined> {
  for (;;) {
    const file = await openLockFile(path);
    if (wait) {
      await file.lock(true);
    } else if (!(await file.tryLock(true))) {
      file.close();
      return undefined;
    }
    const held = await file.stat();
    const current = await Deno.lstat(path).catch(() => undefined);
    if (current && current.ino === held.ino && current.dev === held.dev) return file;
    file.close();
  }
}

/**
 * Tries an exclusive lock without waiting, on a lock file (or directory) in a
 * directory a user can write: never through a symlink, never waiting on a
 * FIFO or a lease (lib/files.ts). Returns the open descriptor while holding
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
