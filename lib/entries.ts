import { ENTRY_NAME, metaPath, STAGING_PREFIX, STEP_NAME, TEMP_NAME, TRASH_NAME } from "./layout.ts";
import { openRegular } from "./lock.ts";
import { self } from "./users.ts";

/** What `reuse` records beside a rootfs when it creates it. */
export interface Meta {
  image: string;
  bytes: number;
  createdAt: string;
  unpackSeconds: number;
}

export interface Entry {
  uid: number;
  name: string;
  path: string;
  /** The entry directory's mtime: refreshed by every reuse, the LRU clock. */
  lastUsed: Date;
  meta?: Meta;
}

/** An unpack or eviction that did not finish. */
export interface Leftover {
  uid: number;
  path: string;
  kind: "temp" | "trash" | "staging" | "step";
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

/** Reads an entry's record without trusting a symlink or an oversized file. */
export async function readMeta(entry: string): Promise<Meta | undefined> {
  const file = await openRegular(metaPath(entry));
  if (!file) return undefined;
  try {
    const buffer = new Uint8Array(META_LIMIT);
    const n = (await file.read(buffer)) ?? 0;
    const meta = JSON.parse(new TextDecoder().decode(buffer.subarray(0, n)));
    return typeof meta?.bytes === "number" && typeof meta?.image === "string" ? meta as Meta : undefined;
  } catch {
    return undefined;
  } finally {
    file.close();
  }
}

/** Shows a name found on disk on one line, whatever bytes it holds. */
function shown(name: string): string {
  return /^[\x21-\x7e]+$/.test(name) ? name : JSON.stringify(name);
}

async function scanUserDir(base: string, uid: number, scan: Scan, withMeta: boolean): Promise<void> {
  const dir = `${base}/${uid}`;
  const info = await Deno.lstat(dir);
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
    names = await Array.fromAsync(Deno.readDir(dir));
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
      const stat = await Deno.lstat(path).catch(() => undefined);
      if (!stat?.isDirectory) {
        if (stat) scan.problems.push(`${path}: not a directory, skipped`);
        continue;
      }
      const entry: Entry = { uid, name, path, lastUsed: stat.mtime ?? new Date(0) };
      if (withMeta) entry.meta = await readMeta(path);
      scan.entries.push(entry);
    } else if (leftover || STEP_NAME.test(name)) {
      const stat = await Deno.lstat(path).catch(() => undefined);
      if (!stat) continue;
      const kind = !leftover ? "step" : name.startsWith(".pyxis_cache_tmp.") ? "temp" : "trash";
      scan.leftovers.push({ uid, path, kind, name: leftover?.[1] ?? name, mtime: stat.mtime ?? new Date(0) });
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
export async function scanEntries(base: string, options: { withMeta: boolean; uid?: number }): Promise<Scan> {
  const scan: Scan = { entries: [], leftovers: [], problems: [] };
  const uids: number[] = [];
  for await (const { name } of Deno.readDir(base)) {
    if (/^\d+$/.test(name) && (options.uid === undefined || Number(name) === options.uid)) uids.push(Number(name));
    if (name.startsWith(STAGING_PREFIX)) {
      const stat = await Deno.lstat(`${base}/${name}`).catch(() => undefined);
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
      await scanUserDir(base, uid, scan, options.withMeta);
    } catch (error) {
      scan.problems.push(`${base}/${uid}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  return scan;
}
