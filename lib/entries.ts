import {
  CREATE_NAME,
  ENTRY_NAME,
  LOCK_FILE,
  MOUNT_NAME,
  RECORD_NAME,
  STAGING_PREFIX,
  STEP_NAME,
  TEMP_NAME,
  TRASH_NAME,
} from "./layout.ts";
import { openAt, type Opened, openPath } from "./files.ts";
import { MANIFEST_DIGEST } from "./reference.ts";
import { self } from "./users.ts";
import { describe } from "./errors.ts";

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

/** An unpack or eviction that did not finish, or the creation lock of an entry that may not exist. */
export interface Leftover {
  uid: number;
  path: string;
  kind: "temp" | "trash" | "staging" | "step" | "create" | "record" | "mount";
  /** The entry it was for. */
  name: string;
  mtime: Date;
}

export interface Scan {
  entries: Entry[];
  leftovers: Leftover[];
  /** Things found and not trusted, one line each. */
  problems: string[];
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
  for (const { name } of names) {
    const path = `${dir}/${name}`;
    const entryMatch = ENTRY_NAME.exec(name);
    const leftover = TEMP_NAME.exec(name) ?? TRASH_NAME.exec(name);
    const creating = CREATE_NAME.exec(name);
    if (entryMatch) {
      if (Number(entryMatch[1]) !== uid) {
        scan.problems.push(`${path}: entry of uid ${entryMatch[1]} in the directory of uid ${uid}, skipped`);
        continue;
      }
      const stat = lstatOrUndefined(path);
      if (!stat?.isDirectory) {
        if (stat) scan.problems.push(`${path}: not a directory, skipped`);
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
    } else if (creating) {
      const stat = lstatOrUndefined(path);
      // Only a regular file is a lock of ours: anything else under the name is left alone.
      if (!stat?.isFile) continue;
      scan.leftovers.push({ uid, path, kind: "create", name: creating[1]!, mtime: stat.mtime ?? new Date(0) });
    } else if (RECORD_NAME.test(name)) {
      const stat = lstatOrUndefined(path);
      if (stat?.isFile) scan.leftovers.push({ uid, path, kind: "record", name, mtime: stat.mtime ?? new Date(0) });
    } else if (name.startsWith("pyxis_cache_")) {
      scan.problems.push(`${dir}/${shown(name)}: not an entry name, skipped`);
    }
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
  const scan: Scan = { entries: [], leftovers: [], problems: [] };
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
