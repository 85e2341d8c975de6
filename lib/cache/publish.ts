/**
 * The cold path of `reuse`, loaded only when an entry must be created: unpack
 * into a temporary directory beside the entry, record the entry's size in its
 * lock file, and make it appear under its name with one rename(2).
 */
import { collect, fitUserLimit, STALE_AFTER_SECONDS } from "./collect.ts";
import type { Config } from "../config/config.ts";
import type { Creation, Meta } from "../store/entries.ts";
import { CacheError, describe } from "../os/errors.ts";
import type { Image } from "../images/identity.ts";
import { createLockPath, entryPath, lockPath, TEMP_NAME, tempPath, trashPath, userDir } from "../layout.ts";
import { lockInUserDir } from "../store/prepare.ts";
import { placeAsOwner } from "../store/place.ts";
import { type Opened, removeTree, touch } from "../os/files.ts";
import { truncate, writeAll } from "../os/libc.ts";
import { unsquashMakingRoom } from "./room.ts";
import { imageRecord, type ImageSource, imageText, withSquashfs } from "./source.ts";
import { unpackedBytes } from "../images/squashfs.ts";
import { treeBytes } from "../images/unpack.ts";
import { statfsUsage, type UsageSource } from "../os/usage.ts";
import { isRoot, type Owner } from "../os/users.ts";

/** Puts the entry's lock file, holding its record, into the unpacked tree, owned by the job user. */
function writeLock(config: Config, temp: string, meta: Meta, owner: Owner): Promise<void> {
  return placeAsOwner(config, lockPath(temp), JSON.stringify(meta) + "\n", owner);
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

/**
 * Unpacks a squashfs file into a temporary directory and makes it appear under `name`
 * with one rename(2). `record` is what the entry's record says it came from.
 */
async function createEntry(
  config: Config,
  image: Image,
  name: string,
  record: { image: string; digest?: string },
  owner: Owner,
  usage?: UsageSource,
) {
  const started = performance.now();
  const temp = tempPath(config.dataPath, owner.uid, name);
  const target = entryPath(config.dataPath, owner.uid, name);
  // Read from the image's metadata while unsquashfs runs; a walk of the tree only when that cannot be done.
  const estimate = unpackedBytes(image);
  try {
    // Within container_cache_user_limit: the user's own least recently used entries make room, or it fails.
    const limited = config.userLimit !== undefined;
    if (limited) await fitUserLimit(config, owner.uid, name, (await estimate) ?? image.bytes, { usage });
    await unsquashMakingRoom(config, image, temp, owner, usage);
    const top = await Deno.lstat(temp);
    if (!top.isDirectory) throw new CacheError(`unsquashfs left no directory for ${image.path}`);
    if (!isRoot() && !(top.mode! & 0o200)) await Deno.chmod(temp, (top.mode! & 0o7777) | 0o200);
    const meta: Meta = {
      ...record,
      bytes: (await estimate) ?? treeBytes(temp),
      createdAt: new Date().toISOString(),
      unpackSeconds: (performance.now() - started) / 1000,
    };
    // The estimate may have been short: what the unpack really took must fit too.
    if (limited) await fitUserLimit(config, owner.uid, name, meta.bytes, { usage, evict: false, without: temp });
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
function recordCreation(creating: Opened, image: ImageSource): void {
  const creation: Creation = {
    image: imageText(image),
    startedAt: new Date().toISOString(),
    pid: Deno.pid,
  };
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
  image: ImageSource,
  owner: Owner,
  usage?: UsageSource,
  wait = true,
): Promise<boolean | "busy"> {
  const creating = await lockInUserDir(config, owner, createLockPath(config.dataPath, owner.uid, image.name), wait);
  if (!creating) return "busy";
  try {
    if (await touch(entryPath(config.dataPath, owner.uid, image.name))) return false;
    if ((await (usage ?? statfsUsage)(config.dataPath)).percent >= config.gcHigh) {
      // Room is wanted now: a temporary directory whose creator is gone goes whatever its age.
      await collect(config, { usage, staleAfterSeconds: 0, foreignAfterSeconds: STALE_AFTER_SECONDS });
    }
    await removeDeadUnpacks(config.dataPath, owner.uid, image.name);
    recordCreation(creating, image);
    const create = (squashfs: Image) => createEntry(config, squashfs, image.name, imageRecord(image), owner, usage);
    await withSquashfs(config, image, owner, create, { usage, creating: true });
    return true;
  } finally {
    creating.close();
  }
}
