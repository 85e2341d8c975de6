import { isRoot } from "./users.ts";

/** Refreshes an entry's mtime (the LRU clock), through a descriptor checked against lstat. */
export async function touch(path: string): Promise<boolean> {
  const seen = await Deno.lstat(path).catch(() => undefined);
  if (!seen?.isDirectory) return false;
  const now = new Date();
  if (!isRoot()) {
    await Deno.utime(path, now, now);
    return true;
  }
  const dir = await Deno.open(path, { read: true });
  try {
    const opened = await dir.stat();
    if (opened.ino !== seen.ino || opened.dev !== seen.dev) return false;
    await dir.utime(now, now);
    return true;
  } finally {
    dir.close();
  }
}
