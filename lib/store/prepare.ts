import type { Config } from "../config/config.ts";
import { CacheError } from "../os/errors.ts";
import { GC_LOCK_MODE, gcLockPath, userDir } from "../layout.ts";
import { lockExclusive, openLockFile } from "./lock.ts";
import type { Opened } from "../os/files.ts";
import { OsError } from "../os/libc.ts";
import { isRoot, type Owner } from "../os/users.ts";

export interface Prepared {
  path: string;
  created: boolean;
  /** What was put right on an existing directory. */
  repaired: string[];
}

/** Makes sure `<base>` exists, is root-owned and traversable, and has its collector lock. */
async function prepareBase(base: string): Promise<void> {
  const info = await Deno.stat(base).catch(() => undefined);
  if (!info) {
    await Deno.mkdir(base, { recursive: true, mode: 0o755 });
    await Deno.chmod(base, 0o755);
  } else {
    if (!info.isDirectory) throw new CacheError(`${base} is not a directory`);
    if (info.uid !== 0) throw new CacheError(`${base} must be owned by root (it is owned by uid ${info.uid})`);
    const mode = info.mode! & 0o7777;
    if (mode & 0o022) throw new CacheError(`${base} must not be writable by group or others`);
    if ((mode & 0o011) !== 0o011) await Deno.chmod(base, mode | 0o011);
  }
  const gcLock = await openLockFile(gcLockPath(base), GC_LOCK_MODE);
  try {
    const info = await gcLock.stat();
    // An older lock file that users could open (and hold, stopping every collection).
    if ((info.mode! & 0o777) !== GC_LOCK_MODE) await Deno.chmod(gcLockPath(base), GC_LOCK_MODE);
  } finally {
    gcLock.close();
  }
}

/**
 * Creates `<base>/<uid>` for the user. False when it is there already: perhaps made a
 * moment ago by a concurrent caller (the first steps of a job array), which is no error.
 */
async function createUserDir(path: string, owner: Owner): Promise<boolean> {
  try {
    await Deno.mkdir(path, { mode: 0o700 });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
  // Safe by path: users cannot write <base>, so nobody can swap this directory.
  await Deno.chown(path, owner.uid, owner.gid);
  await Deno.chmod(path, 0o700);
  return true;
}

/**
 * Creates or repairs `<base>/<uid>`: a real directory, mode 0700, owned by
 * the user. Root only. A symlink, a file, or a directory that belongs to
 * another user is refused, never trusted. Any number of callers may run at once.
 */
export async function prepare(config: Config, owner: Owner): Promise<Prepared> {
  if (!isRoot()) throw new CacheError("prepare must run as root");
  await prepareBase(config.dataPath);
  const path = userDir(config.dataPath, owner.uid);
  if (await createUserDir(path, owner)) return { path, created: true, repaired: [] };
  // What is there, whoever made it. A concurrent creator's directory may still be root's, before its chown.
  const info = await Deno.lstat(path);
  if (!info.isDirectory) throw new CacheError(`${path} is not a directory; refusing to use it`);
  const repaired: string[] = [];
  if (info.uid !== owner.uid && info.uid !== 0) {
    throw new CacheError(`${path} is owned by uid ${info.uid}, not ${owner.uid}; refusing to use it`);
  }
  if (info.uid !== owner.uid || info.gid !== owner.gid) {
    await Deno.chown(path, owner.uid, owner.gid);
    repaired.push(`owner ${info.uid}:${info.gid} -> ${owner.uid}:${owner.gid}`);
  }
  if ((info.mode! & 0o7777) !== 0o700) {
    await Deno.chmod(path, 0o700);
    repaired.push(`mode ${(info.mode! & 0o7777).toString(8)} -> 700`);
  }
  return { path, created: false, repaired };
}

/**
 * The user's directory must be theirs before anything is created in it: root
 * prepares (or repairs) it; a user finds it made by `prepare`, never trusted otherwise.
 */
export async function ensureUserDir(config: Config, owner: Owner): Promise<void> {
  if (isRoot()) {
    await prepare(config, owner);
    return;
  }
  const dir = userDir(config.dataPath, owner.uid);
  const info = await Deno.lstat(dir).catch(() => undefined);
  if (!info) {
    throw new CacheError(
      `${dir} does not exist: run 'pyxis-cache prepare --uid ${owner.uid} --gid ${owner.gid}' as root`,
    );
  }
  if (!info.isDirectory || info.uid !== owner.uid) {
    throw new CacheError(`${dir} is not a directory owned by uid ${owner.uid}; refusing to use it`);
  }
}

/**
 * lockExclusive on a lock file in the owner's directory, which ensureUserDir makes sure of
 * first, and again when the open found no directory (ENOENT: it was removed after it was
 * checked, or while the lock was awaited): root makes it again and goes on; a user gets
 * ensureUserDir's line (root must prepare it; the stub then does, and runs the command
 * again), not the open's ENOENT.
 */
export async function lockInUserDir(config: Config, owner: Owner, path: string): Promise<Opened>;
export async function lockInUserDir(
  config: Config,
  owner: Owner,
  path: string,
  wait: boolean,
): Promise<Opened | undefined>;
export async function lockInUserDir(config: Config, owner: Owner, path: string, wait = true) {
  for (let attempt = 1;; attempt++) {
    await ensureUserDir(config, owner);
    try {
      return await lockExclusive(path, wait);
    } catch (error) {
      if (!(error instanceof OsError && error.code === "ENOENT") || attempt >= 3) throw error;
    }
  }
}
