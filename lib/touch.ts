import { openRegular } from "./lock.ts";
import { isRoot } from "./users.ts";

/**
 * Refreshes an entry's mtime (the LRU clock). Root does it through a descriptor
 * checked against lstat (openRegular), so a symlink planted in the entry's place
 * is never followed; a user may only touch their own files anyway.
 */
export async function touch(path: string): Promise<boolean> {
  const now = new Date();
  if (!isRoot()) {
    if (!(await Deno.lstat(path).catch(() => undefined))?.isDirectory) return false;
    await Deno.utime(path, now, now);
    return true;
  }
  const dir = await openRegular(path, "directory");
  if (!dir) return false;
  try {
    await dir.utime(now, now);
    return true;
  } finally {
    dir.close();
  }
}
