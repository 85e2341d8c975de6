/**
 * flock(2) locks, as the SPANK stub and the collector take them: holders of
 * an entry take its lock shared, the collector tries it exclusive.
 *
 * The collector and `reuse --uid` may run as root in directories a user can
 * write, so nothing here follows a symlink planted in a lock file's place:
 * new files are created with O_EXCL, and an existing file is used only when
 * the file opened is the regular file that lstat(2) saw.
 */

/**
 * Opens an existing regular file (or directory) read-only without trusting a
 * symlink at `path`: the file opened must be the one lstat(2) saw.
 *
 * Synchronous calls: a collector makes these for each of thousands of
 * entries, and each async file call costs a round trip through Deno's thread
 * pool, ten times the syscall on a busy node (bench P4).
 */
export function openRegularSync(
  path: string,
  kind: "file" | "directory" = "file",
  write = false,
): Deno.FsFile | undefined {
  let seen: Deno.FileInfo;
  try {
    seen = Deno.lstatSync(path);
  } catch {
    return undefined;
  }
  const isKind = (info: Deno.FileInfo) => kind === "file" ? info.isFile : info.isDirectory;
  if (!isKind(seen)) return undefined;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true, write });
  } catch {
    return undefined;
  }
  const opened = file.statSync();
  if (isKind(opened) && opened.ino === seen.ino && opened.dev === seen.dev) return file;
  file.close();
  return undefined;
}

export function openRegular(
  path: string,
  kind: "file" | "directory" = "file",
  write = false,
): Promise<Deno.FsFile | undefined> {
  return Promise.try(() => openRegularSync(path, kind, write));
}

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
 * Tries an exclusive lock without waiting. Returns the open file while
 * holding it, `"busy"` when someone holds it, `"missing"` when there is no
 * regular file (or directory) at `path`.
 */
export function tryLockExclusiveSync(
  path: string,
  kind: "file" | "directory" = "file",
): Deno.FsFile | "busy" | "missing" {
  const file = openRegularSync(path, kind);
  if (!file) return "missing";
  if (file.tryLockSync(true)) return file;
  file.close();
  return "busy";
}

export function tryLockExclusive(
  path: string,
  kind: "file" | "directory" = "file",
): Promise<Deno.FsFile | "busy" | "missing"> {
  return Promise.try(() => tryLockExclusiveSync(path, kind));
}
