/**
 * Room on a full disk: an unpack or an import that runs out of space is undone, the
 * collector evicts least recently used entries (never one in use), and it tries again.
 */
import { collect, STALE_AFTER_SECONDS } from "./collect.ts";
import type { Config } from "../config/config.ts";
import { NoSpaceError } from "../os/errors.ts";
import { removeTree } from "../os/files.ts";
import type { Image } from "../images/identity.ts";
import { unsquash } from "../images/unpack.ts";
import { statfsUsage, type UsageSource } from "../os/usage.ts";
import type { Owner } from "../os/users.ts";

/** How many times an attempt runs at most: the first, and one after each collection. */
export const TRIES = 9;

/**
 * Runs `attempt`, and when the filesystem fills up, undoes what it left, evicts until
 * `need` bytes are free, and tries again. How much room is needed is known only by
 * trying: at first `need` (0: down to the low watermark), then twice the room the last
 * try had, until nothing more can be evicted or TRIES attempts failed.
 */
export async function makingRoom<T>(
  config: Config,
  need: number,
  attempt: () => Promise<T>,
  undo: () => Promise<void>,
  usage?: UsageSource,
): Promise<T> {
  let roomOfLastTry = 0;
  for (let tries = 1;; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof NoSpaceError) || tries >= TRIES) throw error;
      await undo();
      need = Math.max(need, roomOfLastTry * 2);
      const room = {
        usage,
        force: true,
        freeBytes: need,
        staleAfterSeconds: 0,
        foreignAfterSeconds: STALE_AFTER_SECONDS,
      };
      let freed = await collect(config, room);
      // Another collector is running: it frees space too. Wait for it, then collect ourselves.
      let waited = false;
      for (let i = 0; freed.skipped && i < 40; i++) {
        waited = true;
        await new Promise((resolve) => setTimeout(resolve, 250));
        freed = await collect(config, room);
      }
      if (freed.evicted.length === 0 && !waited) throw error;
      roomOfLastTry = (await (usage ?? statfsUsage)(config.dataPath)).availableBytes;
    }
  }
}

/** Unpacks the squashfs `image` into `dest` as `owner`, making room on a full disk. */
export function unsquashMakingRoom(
  config: Config,
  image: Image,
  dest: string,
  owner: Owner,
  usage?: UsageSource,
): Promise<void> {
  return makingRoom(config, image.bytes * 2, () => unsquash(image.path, dest, owner), () => removeTree(dest), usage);
}
