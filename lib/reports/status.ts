import type { Config } from "../config/config.ts";
import {
  type Creation,
  type Leftover,
  type Meta,
  openEntryLock,
  scanEntries,
  validCreation,
} from "../store/entries.ts";
import { createLockPath } from "../layout.ts";
import { readSmall } from "../os/files.ts";
import { isHeld } from "../store/lock.ts";
import { round, statfsUsage, type UsageSource } from "../os/usage.ts";
import { lookupUid } from "../os/users.ts";
import { nodeName } from "./node.ts";
import { holdings, limitBytes } from "../store/holdings.ts";

export interface StatusEntry {
  name: string;
  uid: number;
  user: string;
  path: string;
  /** Recorded when the entry was created; null when its record is missing. */
  bytes: number | null;
  lastUsed: string;
  inUse: boolean;
  image: string | null;
  /** A registry image's manifest digest (its identity); null for a squashfs file (absent from older reports). */
  digest?: string | null;
  createdAt: string | null;
}

/** An entry whose creator is unpacking it now. */
export interface Unpacking {
  name: string;
  uid: number;
  user: string;
  /** The temporary directory it is unpacked into. */
  path: string;
  /** From the creator's record in the creation lock; null when there is none to trust. */
  image: string | null;
  startedAt: string | null;
  /** Running steps started from a FUSE mount of the image meanwhile. */
  mountedSteps: number;
}

/** A running step served from a FUSE mount of an image whose entry was not there yet. */
export interface Mounted {
  name: string;
  uid: number;
  /** Its mount point (empty outside the step's own mount namespace). */
  path: string;
}

/** Everything one user holds under `<base>/<uid>` (holdings.ts). */
export interface UserHolding {
  uid: number;
  user: string;
  /** Every byte under `<base>/<uid>`: entryBytes + otherBytes. */
  bytes: number;
  entries: number;
  /** The entries, as recorded at creation (walked when there is no record). */
  entryBytes: number;
  /** Everything else: unpacks in progress, leftovers, names that are not the cache's. */
  otherBytes: number;
  /** What container_cache_user_limit lets one user hold; null: no limit. */
  limitBytes: number | null;
}

export interface Status {
  /** This node's hostname, so that reports from many nodes can be merged. */
  node: string;
  base: string;
  usage: number;
  usedBytes: number;
  availableBytes: number;
  high: number;
  low: number;
  entries: StatusEntry[];
  /** Optional: reports from nodes running an older version, merged, have none. */
  unpacking?: Unpacking[];
  mounted?: Mounted[];
  /** One row per user with anything under `<base>/<uid>` (absent from older reports). */
  users?: UserHolding[];
  /** container_cache_user_limit, percent; null: off (absent from older reports). */
  userLimit?: number | null;
  problems: string[];
}

/** An entry's record, and whether a step holds its lock (a collector could not take it now). */
function inspect(entry: string): { meta?: Meta; inUse: boolean } {
  const lock = openEntryLock(entry);
  // A lease's holder is using the file, as a step holding the lock would be.
  if (lock === "busy") return { inUse: true };
  if (lock === undefined || lock === "gone") return { inUse: false };
  try {
    return { meta: lock.meta, inUse: !lock.file.tryLock(true) };
  } finally {
    lock.file.close();
  }
}

const RECORD_LIMIT = 4096;

/** The record a creator wrote into its creation lock, checked field by field. */
function readCreation(path: string): Creation | undefined {
  try {
    return validCreation(JSON.parse(readSmall(path, RECORD_LIMIT) ?? ""));
  } catch {
    return undefined;
  }
}

/** Unpacks in progress (a temporary directory whose creation lock is held) and steps served from a mount. */
function inProgress(base: string, leftovers: Leftover[]): { unpacking: Unpacking[]; mounted: Mounted[] } {
  const mounted = leftovers.filter((l) => l.kind === "mount" && isHeld(l.path, "directory"))
    .map(({ name, uid, path }) => ({ name, uid, path }));
  const unpacking: Unpacking[] = [];
  for (const temp of leftovers.filter((l) => l.kind === "temp")) {
    const lock = createLockPath(base, temp.uid, temp.name);
    if (!isHeld(lock)) continue;
    const creation = readCreation(lock);
    unpacking.push({
      name: temp.name,
      uid: temp.uid,
      user: lookupUid(temp.uid)?.name ?? String(temp.uid),
      path: temp.path,
      image: creation?.image ?? null,
      startedAt: creation?.startedAt ?? null,
      mountedSteps: mounted.filter((m) => m.uid === temp.uid && m.name === temp.name).length,
    });
  }
  return { unpacking, mounted };
}

/** Filesystem use against the watermarks, and every entry the caller may see. */
export async function status(config: Config, usageSource: UsageSource = statfsUsage): Promise<Status> {
  const usage = await usageSource(config.dataPath);
  const scan = await scanEntries(config.dataPath);
  const entries: StatusEntry[] = [];
  const recorded = new Map<string, number | undefined>();
  // Per user, in the order the collector would evict them: least recently used first.
  const ordered = scan.entries.sort((a, b) => a.uid - b.uid || a.lastUsed.getTime() - b.lastUsed.getTime());
  for (const entry of ordered) {
    const { meta, inUse } = inspect(entry.path);
    recorded.set(entry.path, meta?.bytes);
    entries.push({
      name: entry.name,
      uid: entry.uid,
      user: lookupUid(entry.uid)?.name ?? String(entry.uid),
      path: entry.path,
      bytes: meta?.bytes ?? null,
      lastUsed: entry.lastUsed.toISOString(),
      inUse,
      image: meta?.image ?? null,
      digest: meta?.digest ?? null,
      createdAt: meta?.createdAt ?? null,
    });
  }
  const limit = config.userLimit === undefined ? null : limitBytes(config.userLimit, usage);
  const users = [...holdings(config.dataPath, scan, (e) => recorded.get(e.path))]
    .sort((a, b) => a[0] - b[0])
    .map(([uid, h]): UserHolding => ({
      uid,
      user: lookupUid(uid)?.name ?? String(uid),
      bytes: h.bytes,
      entries: h.entries,
      entryBytes: h.entryBytes,
      otherBytes: h.otherBytes,
      limitBytes: limit,
    }));
  return {
    node: nodeName(),
    base: config.dataPath,
    usage: round(usage.percent),
    usedBytes: usage.usedBytes,
    availableBytes: usage.availableBytes,
    high: config.gcHigh,
    low: config.gcLow,
    entries,
    ...inProgress(config.dataPath, scan.leftovers),
    users,
    userLimit: config.userLimit ?? null,
    problems: scan.problems,
  };
}
