import { ENTRY_NAME, lockPath, MOUNT_NAME, STAGING_PREFIX, STEP_NAME, TEMP_NAME, TRASH_NAME } from "./layout.ts";
import { openRegularSync } from "./lock.ts";
import { self } from "./users.ts";
import { describe } from "./errors.ts";

/** What `reuse` records in an entry's lock file when it creates the entry. */
export interface Meta {
  image: string;
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

/** An unpack or eviction that did not finish. */
export interface Leftover {
  uid: number;
  path: string;
  kind: "temp" | "trash" | "staging" | "step" | "mount";
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
  file: Deno.FsFile;
  meta?: Meta;
}

/**
 * Opens an entry's lock file and reads its record, in one open: a collector
 * does this for every entry it considers. Never trusts a symlink or an
 * oversized file. `undefined` when there is no regular lock file.
 */
export function openEntryLock(entry: string): EntryLock | undefined {
  const file = openRegularSync(lockPath(entry));
  if (!file) return undefined;
  try {
    const n = file.readSync(metaBuffer) ?? 0;
    const meta = JSON.parse(decoder.decode(metaBuffer.subarray(0, n)));
    const valid = typeof meta?.bytes === "number" && typeof meta?.image === "string";
    return { file, meta: valid ? meta as Meta : undefined };
  } catch {
    return { file };
  }
}

/** An entry's record, or `undefined` when it has none that can be trusted. */
export function readMeta(entry: string): Meta | undefined {
  const lock = openEntryLock(entry);
  lock?.file.close();
  return lock?.meta;
}

function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Shows a name found on disk on one line, whatever bytes it holds. */
function shown(name: string): string {
  return /^[\x21-\x7e]+$/.test(name) ? name : JSON.stringify(name);
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
      scan.entries.push({ uid, name, path, lastUsed: stat.mtime ?? new Date(0) });
    } else if (leftover || STEP_NAME.test(name) || MOUNT_NAME.test(name)) {
      const stat = lstatOrUndefined(path);
      if (!stat) continue;
      const mount = MOUNT_NAME.exec(name);
      const kind = mount ? "mount" : !leftover ? "step" : name.startsWith(".pyxis_cache_tmp.") ? "temp" : "trash";
      const entry = leftover?.[1] ?? mount?.[1] ?? name;
      scan.leftovers.push({ uid, path, kind, name: entry, mtime: stat.mtime ?? new Date(0) });
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
