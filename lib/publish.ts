/**
 * The cold path of `reuse`, loaded only when an entry must be created: unpack
 * into a temporary directory beside the entry, record the entry's size in its
 * lock file, and make it appear under its name with one rename(2).
 */
import { collect } from "./collect.ts";
import type { Config } from "./config.ts";
import type { Creation, Meta } from "./entries.ts";
import { CacheError, describe } from "./errors.ts";
import type { Image } from "./identity.ts";
import {
  createLockPath,
  entryPath,
  LOCK_FILE,
  lockPath,
  STAGING_PREFIX,
  TEMP_NAME,
  tempPath,
  trashPath,
  userDir,
} from "./layout.ts";
import { lockExclusive } from "./lock.ts";
import { prepare } from "./prepare.ts";
import { type Opened, openPath, removeTree, touch } from "./files.ts";
import { AT_FDCWD, renameAt, truncate, writeAll } from "./libc.ts";
import { unpackedBytes } from "./squashfs.ts";
import { NoSpaceError, treeBytes, unsquash } from "./unpack.ts";
import { statfsUsage, type UsageSource } from "./usage.ts";
import { isRoot, type Owner } from "./users.ts";

/** The user's directory must be theirs: created by `prepare`, never trusted otherwise. */
export async function checkUserDir(config: Config, owner: Owner): Promise<void> {
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

/** Writes a new file with O_EXCL, so that it never writes through a planted symlink. */
function writeNew(path: string, text: string): Promise<void> {
  return Deno.writeTextFile(path, text, { createNew: true, mode: 0o644 });
}

/**
 * Puts the entry's lock file, holding its record, into the unpacked tree, owned
 * by the job user. Root cannot chown safely inside a directory the user can
 * write (the file could be swapped for a symlink first), so it writes and
 * chowns it in a private directory under the root-owned `<base>` and moves it
 * in with renameat(2) into the temporary directory as root opened it (never
 * through a symlink, and checked to be the user's): swapping the directory's
 * name afterwards changes nothing.
 */
async function writeLock(config: Config, temp: string, meta: Meta, owner: Owner): Promise<void> {
  const record = JSON.stringify(meta) + "\n";
  if (!isRoot()) return await writeNew(lockPath(temp), record);
  const into = openPath(temp, "directory");
  if (typeof into === "string" || into.info.uid !== owner.uid) {
    if (typeof into !== "string") into.close();
    throw new CacheError(`${temp} is no longer a directory of uid ${owner.uid}`);
  }
  const staging = await Deno.makeTempDir({ dir: config.dataPath, prefix: STAGING_PREFIX });
  try {
    await writeNew(`${staging}/lock`, record);
    await Deno.chown(`${staging}/lock`, owner.uid, owner.gid);
    renameAt(AT_FDCWD, `${staging}/lock`, into.fd, LOCK_FILE);
  } finally {
    into.close();
    await Deno.remove(staging, { recursive: true });
  }
}

/**
 * Unpacks, and when the filesystem fills up, evicts least recently used entries
 * (never one in use) until there is room for the image, then tries again. How
 * much room an image needs is known only by trying: at first twice its size,
 * then twice as much as the last try, until nothing more can be evicted.
 */
export async function unsquashMakingRoom(
  config: Config,
  image: { path: string; bytes: number },
  temp: string,
  owner: Owner,
  usage?: UsageSource,
): Promise<void> {
  let need = image.bytes * 2;
  for (let attempt = 1;; attempt++) {
    try {
      return await unsquash(image.path, temp, owner);
    } catch (error) {
      if (!(error instanceof NoSpaceError) || attempt > 8) throw error;
      await removeTree(temp);
      const room = { usage, force: true, freeBytes: need, staleAfterSeconds: 0 };
      let freed = await collect(config, room);
      // Another collector is running: it frees space too. Wait for it, then collect ourselves.
      let waited = false;
      for (let i = 0; freed.skipped && i < 40; i++) {
        waited = true;
        await new Promise((resolve) => setTimeout(resolve, 250));
        freed = await collect(config, room);
      }
      if (freed.evicted.length === 0 && !waited) throw error;
      need *= 2;
    }
  }
}

/**
 * Holding the creation lock, any other temporary directory of this entry is a
 * dead creator's (killed mid-unpack); its space is wanted now, not at the next gc.
 * It is renamed aside first: an orphaned unsquashfs still writing by path stops.
 */
async function removeDeadUnpacks(base: string, uid: number, name: string): Promise<void> {
  const dir = userDir(base, uid);
  for (const item of Deno.readDirSync(dir)) {
    if (TEMP_NAME.exec(item.name)?.[1] !== name) continue;
    const trash = trashPath(base, uid, name);
    try {
      await Deno.rename(`${dir}/${item.name}`, trash);
      await removeTree(trash);
    } catch {
      // Left for the collector, which removes trash whenever it runs.
    }
  }
}

/** Unpacks into a temporary directory and makes it appear under its name with one rename(2). */
async function createEntry(
  config: Config,
  image: Image,
  owner: Owner,
  usage?: UsageSource,
) {
  const started = performance.now();
  const temp = tempPath(config.dataPath, owner.uid, image.name);
  const target = entryPath(config.dataPath, owner.uid, image.name);
  // Read from the image's metadata while unsquashfs runs; a walk of the tree only when that cannot be done.
  const estimate = unpackedBytes(image);
  try {
    await removeDeadUnpacks(config.dataPath, owner.uid, image.name);
    await unsquashMakingRoom(config, image, temp, owner, usage);
    const top = await Deno.lstat(temp);
    if (!top.isDirectory) throw new CacheError(`unsquashfs left no directory for ${image.path}`);
    if (!isRoot() && !(top.mode! & 0o200)) await Deno.chmod(temp, (top.mode! & 0o7777) | 0o200);
    const meta: Meta = {
      image: image.path,
      bytes: (await estimate) ?? treeBytes(temp),
      createdAt: new Date().toISOString(),
      unpackSeconds: (performance.now() - started) / 1000,
    };
    await writeLock(config, temp, meta, owner);
    await Deno.rename(temp, target);
  } catch (error) {
    await removeTree(temp).catch(() => {});
    if (error instanceof CacheError) throw error;
    const why = describe(error);
    throw new CacheError(`cannot create ${target}: ${why}`);
  }
}

/** Says in the held creation lock what is being unpacked since when, for `status`. */
function recordCreation(creating: Opened, image: Image): void {
  const creation: Creation = { image: image.path, startedAt: new Date().toISOString(), pid: Deno.pid };
  truncate(creating.fd);
  writeAll(creating.fd, new TextEncoder().encode(JSON.stringify(creation) + "\n"));
}

/**
 * Creates the image's entry unless a concurrent caller does first: creators
 * take the entry's creation lock and look again once they hold it. Returns
 * whether this call created it, or "busy" when `wait` is false and another
 * creator holds the lock. A cold create at or above the high watermark
 * collects first.
 */
export async function publish(
  config: Config,
  image: Image,
  owner: Owner,
  usage?: UsageSource,
  wait = true,
): Promise<boolean | "busy"> {
  await checkUserDir(config, owner);
  const creating = await lockExclusive(createLockPath(config.dataPath, owner.uid, image.name), wait);
  if (!creating) return "busy";
  try {
    if (await touch(entryPath(config.dataPath, owner.uid, image.name))) return false;
    if ((await (usage ?? statfsUsage)(config.dataPath)).percent >= config.gcHigh) {
      // Room is wanted now: a temporary directory whose creator is gone goes whatever its age.
      await collect(config, { usage, staleAfterSeconds: 0 });
    }
    recordCreation(creating, image);
    await createEntry(config, image, owner, usage);
    return true;
  } finally {
    creating.close();
  }
}
