/**
 * What each user holds under `<base>/<uid>`: every byte there counts to them (`status`,
 * the metrics, container_cache_user_limit). An entry counts as its record says (what
 * its unpack took, measured once at creation); one without a record, and everything
 * else there (an unpack in progress, trash, a step's own directory, names that are not
 * the cache's), by walking it: the blocks it takes, each inode once.
 */
import { type Entry, type Leftover, mountedAt, type Scan, shown } from "./entries.ts";
import { walkTree } from "../os/files.ts";
import * as libc from "../os/libc.ts";
import { describe } from "../os/errors.ts";

export interface Holding {
  uid: number;
  /** Everything under `<base>/<uid>`: entryBytes + otherBytes. */
  bytes: number;
  entries: number;
  entryBytes: number;
  /** What is not an entry: unpacks in progress, leftovers, names that are not the cache's. */
  otherBytes: number;
}

/**
 * How long walking one user's trees may take (in `status`, or a collection under its lock): a
 * user can make millions of names; what is past this is not counted, and said so.
 */
export const WALK_SECONDS = 60;

/** A walk that reached its user's WALK_SECONDS. */
class WalkTooLong extends Error {
  constructor(seconds: number) {
    super(`not walked within the ${seconds} s one user's trees may take`);
  }
}

/**
 * The blocks a tree takes, each inode once, never following a symlink; what could be walked
 * when walking fails or `until` (a `performance.now()` time) passes. `raw`: the tree is that
 * name (bytes) in the directory above `path`.
 */
function walked(path: string, seen: Set<bigint>, problems: string[], until: number, raw?: Uint8Array): number {
  let bytes = 0;
  let visited = 0;
  const count = (ino: bigint, blocks: number, isDirectory: boolean) => {
    if ((++visited & 255) === 0 && performance.now() > until) throw new WalkTooLong(WALK_SECONDS);
    if (!isDirectory) {
      // A hard link counts once: the same inode under two names is one file's blocks.
      if (seen.has(ino)) return;
      seen.add(ino);
    }
    bytes += blocks * 512;
  };
  let parent = libc.AT_FDCWD;
  try {
    if (raw) {
      parent = libc.openAt(libc.AT_FDCWD, path.slice(0, path.lastIndexOf("/")), libc.O_RDONLY | libc.O_DIRECTORY);
    }
    if (performance.now() > until) throw new WalkTooLong(WALK_SECONDS);
    const top = libc.stat(parent, raw ?? path);
    count(top.ino, top.blocks, top.isDirectory);
    if (top.isDirectory) {
      walkTree(raw ?? path, (_dir, _name, info) => count(info.ino, info.blocks, info.isDirectory), parent);
    }
  } catch (error) {
    // Gone since the scan: nothing to count.
    if (!(error instanceof libc.OsError && error.code === "ENOENT")) {
      problems.push(`${shown(path)}: counted only in part: ${describe(error)}`);
    }
  } finally {
    if (parent !== libc.AT_FDCWD) libc.close(parent);
  }
  return bytes;
}

/**
 * Each user's holding, from a scan: `recorded` gives an entry's recorded size
 * (`undefined`: none to trust, so it is walked). `skip` leaves out leftovers that
 * are gone (removed by this collection). A tree with a mount point in it is not
 * walked (see mountedAt), and says so.
 */
export function holdings(
  base: string,
  scan: Scan,
  recorded: (entry: Entry) => number | undefined,
  options: { skip?: (leftover: Leftover) => boolean; problems?: string[] } = {},
): Map<number, Holding> {
  const problems = options.problems ?? scan.problems;
  const result = new Map<number, Holding>();
  const seen = new Map<number, Set<bigint>>();
  const until = new Map<number, number>();
  const of = (uid: number) => {
    let holding = result.get(uid);
    if (!holding) {
      result.set(uid, holding = { uid, bytes: 0, entries: 0, entryBytes: 0, otherBytes: 0 });
      seen.set(uid, new Set());
      until.set(uid, performance.now() + WALK_SECONDS * 1000);
    }
    return holding;
  };
  const walk = (uid: number, path: string, raw?: Uint8Array) => {
    if (mountedAt(scan, base, path)) {
      problems.push(`${shown(path)}: a mount point is in it: not counted`);
      return 0;
    }
    // Past the user's walking time: the first tree cut short said so; the rest are not counted.
    if (performance.now() > until.get(uid)!) return 0;
    return walked(path, seen.get(uid)!, problems, until.get(uid)!, raw);
  };
  for (const entry of scan.entries) {
    const holding = of(entry.uid);
    const bytes = recorded(entry) ?? walk(entry.uid, entry.path);
    holding.entries++;
    holding.entryBytes += bytes;
    holding.bytes += bytes;
  }
  for (const leftover of scan.leftovers) {
    // Root's own staging directory is nobody's.
    if (leftover.kind === "staging" || options.skip?.(leftover)) continue;
    const holding = of(leftover.uid);
    const bytes = walk(leftover.uid, leftover.path, leftover.raw);
    holding.otherBytes += bytes;
    holding.bytes += bytes;
  }
  return result;
}

/** The bytes one user may hold: `percent` of the cache filesystem (used + available to users). */
export function limitBytes(percent: number, usage: { usedBytes: number; availableBytes: number }): number {
  return Math.floor(((usage.usedBytes + usage.availableBytes) * percent) / 100);
}
