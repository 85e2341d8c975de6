/**
 * File-system helpers for root working in directories users can write.
 *
 * A user owns `<base>/<uid>` and everything in it, and may swap any name there
 * for a symlink, a FIFO or a leased file at any moment; `<base>` and
 * `<base>/<uid>` themselves are root's names and cannot be swapped. So a path
 * `<base>/<uid>/<name>` is opened with O_NOFOLLOW (the last component is the
 * only one a user controls) and O_NONBLOCK (a FIFO opens at once, a leased
 * file fails at once), and what lies below it is reached only relative to the
 * descriptor: nothing is looked up by path twice. See lib/os/libc.ts for why
 * this goes through the C library.
 */
import * as libc from "./libc.ts";
import { randomSuffix } from "../layout.ts";
import { isRoot, self } from "./users.ts";

export type Kind = "file" | "directory";

const OPEN_FLAGS = libc.O_RDONLY | libc.O_NOFOLLOW | libc.O_NONBLOCK;

/** A descriptor opened without following a symlink or blocking, and what it is. */
export class Opened {
  #closed = false;
  constructor(readonly fd: number, readonly info: libc.Stat) {}
  /** flock(2) without waiting. */
  tryLock(exclusive = true): boolean {
    return libc.tryFlock(this.fd, exclusive);
  }
  read(buffer: Uint8Array<ArrayBuffer>): number {
    return libc.read(this.fd, buffer);
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc.close(this.fd);
  }
}

/**
 * Opens `name` relative to `dir` (a descriptor, or AT_FDCWD for a path) as a
 * regular file or directory. `"missing"` when there is none of that kind
 * there (a symlink, a FIFO, nothing); `"busy"` when a file lease stands in
 * the way: its holder is using it, as surely as a flock holder would be.
 */
export function openAt(dir: number, name: libc.Name, kind: Kind = "file", write = false): Opened | "busy" | "missing" {
  let fd: number;
  try {
    const access = write ? (OPEN_FLAGS & ~libc.O_RDONLY) | libc.O_RDWR : OPEN_FLAGS;
    fd = libc.openAt(dir, name, access | (kind === "directory" ? libc.O_DIRECTORY : 0));
  } catch (error) {
    if (error instanceof libc.OsError && error.code === "EWOULDBLOCK") return "busy";
    if (error instanceof libc.OsError) return "missing";
    throw error;
  }
  const info = libc.stat(fd);
  if (kind === "file" ? info.isFile : info.isDirectory) return new Opened(fd, info);
  libc.close(fd);
  return "missing";
}

/** openAt by path: only the last component is not followed (see the top of this file). */
export function openPath(path: string, kind: Kind = "file", write = false): Opened | "busy" | "missing" {
  return openAt(libc.AT_FDCWD, path, kind, write);
}

/**
 * The text of up to `limit` bytes of a small file (one read), or `undefined` when it
 * cannot be read. A user reads their own files as any file (the warm path loads no C
 * library); root, in a directory the user can write, only a regular file through openPath,
 * and with `owner` only one that uid owns.
 */
export function readSmall(path: string, limit: number, options: { owner?: number } = {}): string | undefined {
  const buffer = new Uint8Array(limit);
  try {
    if (!isRoot()) {
      const file = Deno.openSync(path, { read: true });
      try {
        return new TextDecoder().decode(buffer.subarray(0, file.readSync(buffer) ?? 0));
      } finally {
        file.close();
      }
    }
    const opened = openPath(path);
    if (typeof opened === "string") return undefined;
    try {
      if (options.owner !== undefined && opened.info.uid !== options.owner) return undefined;
      return new TextDecoder().decode(buffer.subarray(0, opened.read(buffer)));
    } finally {
      opened.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * Opens an existing regular file (or directory) in a root-owned directory
 * read-only, through Deno (a Deno.FsFile can be locked and read
 * asynchronously), without trusting a symlink at `path`: the file opened must
 * be the one lstat(2) saw. In a directory a user can write, use openPath.
 */
export function openRegular(path: string, kind: Kind = "file"): Promise<Deno.FsFile | undefined> {
  return Promise.try(() => {
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
      file = Deno.openSync(path, { read: true });
    } catch {
      return undefined;
    }
    const opened = file.statSync();
    if (isKind(opened) && opened.ino === seen.ino && opened.dev === seen.dev) return file;
    file.close();
    return undefined;
  });
}

/**
 * Refreshes an entry's mtime (the LRU clock). Root does it through a
 * descriptor opened without following a symlink or waiting on a FIFO; a user
 * may only touch their own files anyway, and needs no C library for it (the
 * warm path).
 */
export async function touch(path: string): Promise<boolean> {
  if (!isRoot()) {
    const now = new Date();
    if (!(await Deno.lstat(path).catch(() => undefined))?.isDirectory) return false;
    await Deno.utime(path, now, now);
    return true;
  }
  const dir = openPath(path, "directory");
  if (typeof dir === "string") return false;
  try {
    libc.touchNow(dir.fd);
    return true;
  } finally {
    dir.close();
  }
}

/** How deep removeTree descends before it moves a directory up to the top instead. */
const REMOVE_DEPTH = 32;
/**
 * How long one removeTree may take unless its caller bounds it otherwise: any tree
 * the cache makes goes in far less (a 50,000-file entry in about 0.5 s on tmpfs,
 * trash 75,000 levels deep in about 5 s), but a user who keeps adding names to a tree
 * of their own ahead of root's getdents64 order could otherwise keep root removing it
 * for as long as they like. What is left is the next removal's.
 */
export const REMOVE_SECONDS = 300;

/** A removal that reached its bound before the tree was gone: what is left stays for the next one. */
export class OutOfTime extends Error {
  constructor(readonly seconds: number) {
    super(`not removed within ${seconds} s: names kept appearing in it, or it is larger than that allows`);
  }
}

/**
 * Removes a tree without following a symlink and without recursion as deep as
 * the tree: everything is reached relative to directory descriptors, and a
 * directory deeper than REMOVE_DEPTH is renamed up into the tree's top and
 * removed from there, so a tree 60,000 levels deep costs no deeper a stack
 * (nor more descriptors) than one 32 levels deep. Never through `..`, which a
 * user could redirect. A user's own read-only directories are made writable
 * first (root needs no such help, and never chmods user paths).
 *
 * It ends by `until` (a `performance.now()` time; `seconds` from now unless given),
 * checked name by name and between directory reads from the very first one, with
 * OutOfTime: nothing anybody adds to the tree meanwhile can make it run longer.
 */
export function removeTree(
  path: string,
  seconds = REMOVE_SECONDS,
  until = performance.now() + seconds * 1000,
): Promise<void> {
  const slash = path.lastIndexOf("/");
  return removeTreeAt(slash <= 0 ? "/" : path.slice(0, slash), path.slice(slash + 1), seconds, until);
}

/** removeTree of `name` in the directory `dir`: a name as bytes too (one that is not UTF-8). */
export function removeTreeAt(
  dir: string,
  name: libc.Name,
  seconds = REMOVE_SECONDS,
  until = performance.now() + seconds * 1000,
): Promise<void> {
  return Promise.try(() => {
    const parent = libc.openAt(libc.AT_FDCWD, dir, libc.O_RDONLY | libc.O_DIRECTORY);
    try {
      removeAt(parent, name, { seconds, until });
    } finally {
      libc.close(parent);
    }
  });
}

function code(error: unknown): string | undefined {
  return error instanceof libc.OsError ? error.code : undefined;
}

/** When a removal must end: `until` is a `performance.now()` time, `seconds` what it is said as. */
interface Bound {
  seconds: number;
  until: number;
}

/** One removal: the tree's top, where deep directories are hoisted, and when it must end. */
interface Removal {
  top: number;
  bound: Bound;
}

/** Throws OutOfTime once the removal's bound has passed. */
function inTime(bound: Bound): void {
  if (performance.now() > bound.until) throw new OutOfTime(bound.seconds);
}

/** Removes `name` in `parent`, whatever it is. */
function removeAt(parent: number, name: libc.Name, bound: Bound): void {
  inTime(bound);
  const top = openDirToEmpty(parent, name);
  if (top === undefined) return unlinkIfThere(parent, name);
  const removal: Removal = { top, bound };
  try {
    // Each pass empties what it reaches; directories hoisted into the top wait for the next one.
    for (;;) {
      emptyDir(top, removal, 0);
      try {
        return libc.unlinkAt(parent, name, true);
      } catch (error) {
        if (code(error) === "ENOENT") return;
        if (code(error) !== "ENOTEMPTY") throw error;
        inTime(bound);
      }
    }
  } finally {
    libc.close(top);
  }
}

/**
 * Opens a directory to empty it; `undefined` when `name` is no directory (a
 * symlink, a file, swapped since it was listed). A user's own unreadable
 * directory (mode 000) is made readable first.
 */
function openDirToEmpty(parent: number, name: libc.Name): number | undefined {
  try {
    return libc.openAt(parent, name, OPEN_FLAGS | libc.O_DIRECTORY);
  } catch (error) {
    if (code(error) === "ENOTDIR" || code(error) === "ELOOP" || code(error) === "ENOENT") return undefined;
    if (code(error) !== "EACCES" || isRoot()) throw error;
    const info = libc.stat(parent, name);
    if (!info.isDirectory || info.uid !== self().uid) throw error;
    libc.chmodAt(parent, name, 0o700);
    return libc.openAt(parent, name, OPEN_FLAGS | libc.O_DIRECTORY);
  }
}

function unlinkIfThere(dir: number, name: libc.Name): void {
  ifThere(() => libc.unlinkAt(dir, name), undefined);
}

/** A user's own read-only directory, made writable so that it can be emptied. */
function makeOwnWritable(fd: number): boolean {
  if (isRoot()) return false;
  const info = libc.stat(fd);
  if (info.uid !== self().uid || (info.mode & 0o700) === 0o700) return false;
  libc.fchmod(fd, 0o700);
  return true;
}

/**
 * Empties `dir`. Another remover may be emptying the same tree (root's
 * collector and a user's both take a trash directory): whatever it removed or
 * hoisted first is simply gone, and a directory it removed reads as empty.
 */
function emptyDir(dir: number, removal: Removal, depth: number): void {
  makeOwnWritable(dir);
  // A directory another remover removed lists as empty (getdents64 fails with ENOENT).
  const bound = removal.bound;
  for (const { name, isDirectory } of ifThere(() => libc.listDir(dir, () => inTime(bound)), [])) {
    // Checked name by name: somebody adding faster than this removes would make any one pass endless.
    inTime(bound);
    if (!isDirectory) {
      try {
        libc.unlinkAt(dir, name);
        continue;
      } catch (error) {
        if (code(error) === "ENOENT") continue;
        if (code(error) !== "EISDIR") throw error;
      }
    }
    if (depth >= REMOVE_DEPTH) {
      ifThere(() => libc.renameAt(dir, name, removal.top, `.pyxis_cache_deep.${randomSuffix()}`), undefined);
      continue;
    }
    const child = openDirToEmpty(dir, name);
    if (child === undefined) {
      unlinkIfThere(dir, name);
      continue;
    }
    try {
      emptyDir(child, removal, depth + 1);
    } finally {
      libc.close(child);
    }
    ifThere(() => libc.unlinkAt(dir, name, true), undefined);
  }
}

/** What `call` returns, or `gone` when what it works on was removed already (ENOENT). */
function ifThere<T>(call: () => T, gone: T): T {
  try {
    return call();
  } catch (error) {
    if (code(error) === "ENOENT") return gone;
    throw error;
  }
}

/** How deep walkTree goes: a tree deeper than this is refused (a descriptor per level). */
const WALK_DEPTH = 512;

/**
 * Calls `visit` for everything under `path` with its directory's descriptor,
 * its name as bytes (a name that is not UTF-8 is still the name on disk) and
 * its statx, never following a symlink.
 */
export function walkTree(
  path: libc.Name,
  visit: (dir: number, name: Uint8Array, info: libc.Stat) => void,
  at: number = libc.AT_FDCWD,
): void {
  const top = libc.openAt(at, path, OPEN_FLAGS | libc.O_DIRECTORY);
  try {
    walkAt(top, visit, 0);
  } finally {
    libc.close(top);
  }
}

function walkAt(dir: number, visit: (dir: number, name: Uint8Array, info: libc.Stat) => void, depth: number): void {
  if (depth > WALK_DEPTH) throw new Error(`more than ${WALK_DEPTH} directory levels`);
  for (const { name } of libc.listDir(dir)) {
    const info = ifThere(() => libc.stat(dir, name), undefined);
    if (info === undefined) continue;
    visit(dir, name, info);
    if (!info.isDirectory) continue;
    const child = libc.openAt(dir, name, OPEN_FLAGS | libc.O_DIRECTORY);
    try {
      walkAt(child, visit, depth + 1);
    } finally {
      libc.close(child);
    }
  }
}

/**
 * Writes `text` to `path` so that readers see the old file or the new one,
 * never a part: a temporary file created (O_EXCL) in the same directory, then
 * renamed over `path`. The temporary name never ends like `path` does, so a
 * collector of `*.prom` files never picks it up.
 */
export async function writeAtomically(path: string, text: string, mode = 0o644): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  const name = path.slice(slash + 1);
  const temp = `${dir === "/" ? "" : dir}/.${name}.${randomSuffix()}.tmp`;
  const file = await Deno.open(temp, { write: true, createNew: true, mode });
  try {
    const bytes = new TextEncoder().encode(text);
    // A write may be short: finish it.
    for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
    await Deno.chmod(temp, mode); // whatever the umask
    await file.syncData();
  } catch (error) {
    file.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  file.close();
  try {
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
