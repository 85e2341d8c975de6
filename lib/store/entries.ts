import {
  CREATE_NAME,
  ENTRY_NAME,
  LOCK_FILE,
  MANIFEST_DIGEST,
  MOUNT_NAME,
  NAMED_NAME,
  RECORD_NAME,
  STAGING_PREFIX,
  STEP_NAME,
  TEMP_NAME,
  TRASH_NAME,
  USER_GC_LOCK_FILE,
} from "../layout.ts";
import { openAt, type Opened, openPath } from "../os/files.ts";
import * as libc from "../os/libc.ts";
import { self } from "../os/users.ts";
import { describe } from "../os/errors.ts";

/** What `reuse` records in an entry's lock file when it creates the entry. */
export interface Meta {
  /** The squashfs file's resolved path, or the registry reference as given. */
  image: string;
  /** A registry image's manifest digest: its identity. */
  digest?: string;
  bytes: number;
  createdAt: string;
  unpackSeconds: number;
}

/** What a creator writes into the creation lock it holds while it unpacks. */
export interface Creation {
  image: string;
  startedAt: string;
  pid: number;
}

export interface Entry {
  uid: number;
  name: string;
  path: string;
  /** The entry directory's mtime: refreshed by every reuse, the LRU clock. */
  lastUsed: Date;
}

/**
 * An unpack or eviction that did not finish, or the creation lock of an entry that may not exist;
 * or ("foreign") a name in `<base>/<uid>` that is none of the cache's.
 */
export interface Leftover {
  uid: number;
  path: string;
  kind: "temp" | "trash" | "staging" | "step" | "create" | "record" | "mount" | "named" | "foreign";
  /** The entry it was for. */
  name: string;
  /** Its mtime; for a foreign name the later of its mtime and ctime (which nobody can set back). */
  mtime: Date;
  /**
   * A foreign name that is not UTF-8: its bytes (with the NUL listDir gives), in the directory
   * `<base>/<uid>`; `path` then holds it decoded, U+FFFD for each byte that is not.
   */
  raw?: Uint8Array;
}

export interface Scan {
  entries: Entry[];
  leftovers: Leftover[];
  /** Things found and not trusted, one line each. */
  problems: string[];
  /** Mount points under `<base>`, relative to it (`<uid>/<name>/...`): root never walks into one. */
  mounts: string[];
}

/**
 * Whether a mount point is at `path` (under `<base>`) or below it. A user can mount a
 * FUSE filesystem of their own (fusermount) on a directory of theirs, and a server
 * that never answers would hold whoever walks into it: root never does.
 */
export function mountedAt(scan: Scan, base: string, path: string): boolean {
  if (scan.mounts.length === 0 || !path.startsWith(`${base}/`)) return false;
  const relative = path.slice(base.length + 1);
  return scan.mounts.some((m) => m === relative || m.startsWith(`${relative}/`));
}

/** mountinfo's octal escapes (a space is \040). */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mount points under `base` (its real path), relative to it, from /proc/self/mountinfo. */
function mountsUnder(base: string): string[] {
  let text: string;
  let real: string;
  try {
    text = Deno.readTextFileSync("/proc/self/mountinfo");
    real = Deno.realPathSync(base);
  } catch {
    return [];
  }
  const prefix = real === "/" ? "/" : `${real}/`;
  const mounts: string[] = [];
  for (const line of text.split("\n")) {
    const point = line.split(" ")[4];
    if (point === undefined) continue;
    const path = unescapeMount(point);
    if (path.startsWith(prefix) && path.length > prefix.length) mounts.push(path.slice(prefix.length));
  }
  return mounts;
}

const META_LIMIT = 64 * 1024;
/** One buffer for every record read: a fresh 64 KiB per entry was most of a 10,000-entry scan (bench P4). */
const metaBuffer = new Uint8Array(META_LIMIT);
const decoder = new TextDecoder();

/** An entry's lock, open (not locked), and the record it holds. */
export interface EntryLock {
  file: Opened;
  meta?: Meta;
}

/** The longest image path a record may name; longer ones are not trusted. */
const IMAGE_LIMIT = 4096;
/** Control and format characters (C0, DEL, C1, bidi overrides): never sent raw to root's terminal. */
const CONTROL = /[\p{Cc}\p{Cf}]/u;

/**
 * What a record may claim (docs/operations.md): a size in bytes that is a
 * non-negative safe integer, an image path of at most IMAGE_LIMIT characters
 * without control characters, a time of creation that is a date, and for a registry
 * image a manifest digest (one that is not is dropped). Anything else is not a
 * record: the entry is shown and evicted as one without.
 */
export function validMeta(raw: unknown): Meta | undefined {
  const m = raw as Partial<Meta> | null;
  if (typeof m !== "object" || m === null) return undefined;
  if (typeof m.bytes !== "number" || !Number.isSafeInteger(m.bytes) || m.bytes < 0) return undefined;
  if (typeof m.image !== "string" || m.image.length > IMAGE_LIMIT || CONTROL.test(m.image)) return undefined;
  if (typeof m.createdAt !== "string" || m.createdAt.length > 64 || Number.isNaN(Date.parse(m.createdAt))) {
    return undefined;
  }
  const seconds = typeof m.unpackSeconds === "number" && Number.isFinite(m.unpackSeconds) && m.unpackSeconds >= 0
    ? m.unpackSeconds
    : 0;
  const digest = typeof m.digest === "string" && MANIFEST_DIGEST.test(m.digest) ? { digest: m.digest } : {};
  return { image: m.image, ...digest, bytes: m.bytes, createdAt: m.createdAt, unpackSeconds: seconds };
}

/** What a creator's record (in its creation lock) may claim: an image, a start that is a date, and a pid. */
export function validCreation(raw: unknown): Creation | undefined {
  const c = raw as Partial<Creation> | null;
  if (typeof c?.image !== "string" || typeof c?.startedAt !== "string") return undefined;
  if (Number.isNaN(Date.parse(c.startedAt))) return undefined;
  return { image: c.image, startedAt: c.startedAt, pid: Number(c.pid) };
}

/**
 * Opens an entry's lock file and reads its record, in one open: a collector
 * does this for every entry it considers. The entry is opened without
 * following a symlink and its lock relative to it (the entry is a name its
 * user can swap), neither waiting on a FIFO or a lease. `undefined` when the
 * entry has no regular lock file; `"busy"` when a lease stands in the way;
 * `"gone"` when no directory is under the entry's name any more.
 */
export function openEntryLock(entry: string): EntryLock | "busy" | "gone" | undefined {
  const dir = openPath(entry, "directory");
  if (dir === "busy") return "busy";
  // Still a directory, but one its user made unreadable (mode 000): an entry without a lock.
  if (dir === "missing") return lstatOrUndefined(entry)?.isDirectory ? undefined : "gone";
  let file: Opened | "busy" | "missing";
  try {
    file = openAt(dir.fd, LOCK_FILE);
  } finally {
    dir.close();
  }
  if (file === "busy") return "busy";
  if (file === "missing") return undefined;
  try {
    const n = file.read(metaBuffer);
    return { file, meta: validMeta(JSON.parse(decoder.decode(metaBuffer.subarray(0, n)))) };
  } catch {
    return { file };
  }
}

/** An entry's record, or `undefined` when it has none that can be trusted. */
export function readMeta(entry: string): Meta | undefined {
  const lock = openEntryLock(entry);
  if (typeof lock !== "object") return undefined;
  lock.file.close();
  return lock.meta;
}

function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Shows a name found on disk (or a user's record) on one line, whatever bytes it holds. */
export function shown(name: string): string {
  return /^[\x21-\x7e]+$/.test(name) ? name : JSON.stringify(name);
}

/** How far ahead of this clock an mtime may be before it cannot be honest. */
const FUTURE_SLACK_MS = 60_000;

/**
 * An entry's mtime, the LRU clock. Only `reuse` sets it, to the present; a
 * later one was set by hand (`touch -d 2100-01-01` would pin an entry for
 * ever), so it counts as least recently used, and is reported.
 */
function lastUsed(path: string, stat: Deno.FileInfo, scan: Scan): Date {
  const mtime = stat.mtime ?? new Date(0);
  if (mtime.getTime() <= Date.now() + FUTURE_SLACK_MS) return mtime;
  scan.problems.push(`${path}: last used in the future (${mtime.toISOString()}): counted as least recently used`);
  return new Date(0);
}

function scanUserDir(base: string, uid: number, scan: Scan): void {
  const dir = `${base}/${uid}`;
  // The user owns it, so may mount on it (fusermount): not even lstat(2) then.
  if (scan.mounts.includes(String(uid))) {
    scan.problems.push(`${dir}: a mount point, skipped`);
    return;
  }
  const info = Deno.lstatSync(dir);
  if (!info.isDirectory) {
    scan.problems.push(`${dir}: not a directory, skipped`);
    return;
  }
  if (info.uid !== uid) {
    scan.problems.push(`${dir}: owned by uid ${info.uid}, not ${uid}, skipped`);
    return;
  }
  let names: Deno.DirEntry[];
  try {
    names = Array.from(Deno.readDirSync(dir));
  } catch (error) {
    // Other users' directories are 0700: a user's own scan simply does not see them.
    if (error instanceof Deno.errors.PermissionDenied && uid !== self().uid) return;
    throw error;
  }
  const mounted = new Set(scan.mounts);
  // What is not the cache's: it counts to the user, and the collector removes it once stale.
  const foreign = (path: string, name: string, stat: Deno.FileInfo | undefined) => {
    if (!stat) return;
    const changed = Math.max(stat.mtime?.getTime() ?? 0, stat.ctime?.getTime() ?? 0);
    scan.leftovers.push({ uid, path, kind: "foreign", name, mtime: new Date(changed) });
  };
  // A name that is not UTF-8 reads as one with U+FFFD, which is not on disk: those are found by their bytes.
  if (names.some(({ name }) => name.includes("\uFFFD"))) undecodable(dir, uid, mounted, scan);
  for (const { name } of names) {
    if (name.includes("\uFFFD")) continue;
    const path = `${dir}/${name}`;
    // Not even lstat(2): on a user's FUSE mount it would wait for their server.
    if (mounted.has(`${uid}/${name}`)) {
      scan.problems.push(`${dir}/${shown(name)}: a mount point, skipped`);
      continue;
    }
    const entryMatch = ENTRY_NAME.exec(name);
    const leftover = TEMP_NAME.exec(name) ?? TRASH_NAME.exec(name);
    const creating = CREATE_NAME.exec(name);
    if (entryMatch) {
      if (Number(entryMatch[1]) !== uid) {
        scan.problems.push(`${path}: entry of uid ${entryMatch[1]} in the directory of uid ${uid}: not the cache's`);
        foreign(path, name, lstatOrUndefined(path));
        continue;
      }
      const stat = lstatOrUndefined(path);
      if (!stat?.isDirectory) {
        if (stat) scan.problems.push(`${path}: not a directory: not the cache's`);
        foreign(path, name, stat);
        continue;
      }
      scan.entries.push({ uid, name, path, lastUsed: lastUsed(path, stat, scan) });
    } else if (leftover || STEP_NAME.test(name) || MOUNT_NAME.test(name)) {
      const stat = lstatOrUndefined(path);
      if (!stat) continue;
      const mount = MOUNT_NAME.exec(name);
      const kind = mount ? "mount" : !leftover ? "step" : name.startsWith(".pyxis_cache_tmp.") ? "temp" : "trash";
      const entry = leftover?.[1] ?? mount?.[1] ?? name;
      scan.leftovers.push({ uid, path, kind, name: entry, mtime: stat.mtime ?? new Date(0) });
    } else if (NAMED_NAME.test(name)) {
      const stat = lstatOrUndefined(path);
      // Only a directory is a named container of ours.
      if (!stat?.isDirectory) foreign(path, name, stat);
      else scan.leftovers.push({ uid, path, kind: "named", name, mtime: stat.mtime ?? new Date(0) });
    } else if (creating) {
      const stat = lstatOrUndefined(path);
      // Only a regular file is a lock of ours: anything else under the name is not the cache's.
      if (!stat?.isFile) foreign(path, name, stat);
      else scan.leftovers.push({ uid, path, kind: "create", name: creating[1]!, mtime: stat.mtime ?? new Date(0) });
    } else if (RECORD_NAME.test(name)) {
      const stat = lstatOrUndefined(path);
      if (stat?.isFile) scan.leftovers.push({ uid, path, kind: "record", name, mtime: stat.mtime ?? new Date(0) });
      else foreign(path, name, stat);
    } else if (name === USER_GC_LOCK_FILE) {
      const stat = lstatOrUndefined(path);
      if (!stat?.isFile) foreign(path, name, stat);
    } else {
      if (name.startsWith("pyxis_cache_")) {
        scan.problems.push(`${dir}/${shown(name)}: not an entry name: not the cache's`);
      }
      foreign(path, name, lstatOrUndefined(path));
    }
  }
}

const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * The names in `dir` that are not UTF-8, or hold U+FFFD: none is one of the cache's, so each is a
 * foreign leftover, kept by its bytes (statx and removal go by them, relative to the directory).
 */
function undecodable(dir: string, uid: number, mounted: Set<string>, scan: Scan): void {
  const fd = libc.openAt(libc.AT_FDCWD, dir, libc.O_RDONLY | libc.O_DIRECTORY | libc.O_NOFOLLOW | libc.O_NONBLOCK);
  try {
    for (const { name: raw } of libc.listDir(fd)) {
      const bytes = raw.subarray(0, -1);
      let text: string;
      try {
        text = strict.decode(bytes);
        if (!text.includes("\uFFFD")) continue; // read through Deno already
      } catch {
        text = decoder.decode(bytes);
      }
      if (mounted.has(`${uid}/${text}`)) {
        scan.problems.push(`${dir}/${shown(text)}: a mount point, skipped`);
        continue;
      }
      let info: libc.Stat;
      try {
        info = libc.stat(fd, raw);
      } catch {
        continue; // gone since it was listed
      }
      scan.problems.push(`${dir}/${shown(text)}: not an entry name: not the cache's`);
      const changed = Math.max(info.mtime.getTime(), info.ctime.getTime());
      scan.leftovers.push({ uid, path: `${dir}/${text}`, kind: "foreign", name: text, mtime: new Date(changed), raw });
    }
  } finally {
    libc.close(fd);
  }
}

/**
 * Lists the entries under `<base>/*`, and what unfinished work left behind,
 * looking only at real directories named for a uid and owned by it.
 * Never follows a symlink.
 */
export function scanEntries(base: string, options: { uid?: number } = {}): Promise<Scan> {
  return Promise.try(() => scanEntriesSync(base, options));
}

/** scanEntries with synchronous calls: one async call per entry took seconds over 10,000 (bench P4). */
function scanEntriesSync(base: string, options: { uid?: number }): Scan {
  const scan: Scan = { entries: [], leftovers: [], problems: [], mounts: mountsUnder(base) };
  const uids: number[] = [];
  for (const { name } of Deno.readDirSync(base)) {
    if (/^\d+$/.test(name) && (options.uid === undefined || Number(name) === options.uid)) uids.push(Number(name));
    if (name.startsWith(STAGING_PREFIX)) {
      const stat = lstatOrUndefined(`${base}/${name}`);
      if (stat) {
        scan.leftovers.push({
          uid: 0,
          path: `${base}/${name}`,
          kind: "staging",
          name,
          mtime: stat.mtime ?? new Date(0),
        });
      }
    }
  }
  for (const uid of uids.sort((a, b) => a - b)) {
    try {
      scanUserDir(base, uid, scan);
    } catch (error) {
      scan.problems.push(`${base}/${uid}: ${describe(error)}`);
    }
  }
  return scan;
}
