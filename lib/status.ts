import type { Config } from "./config.ts";
import { type Meta, openEntryLock, scanEntries } from "./entries.ts";
import { round, statfsUsage, type UsageSource } from "./usage.ts";
import { lookupUid } from "./users.ts";
import { nodeName } from "./node.ts";

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

/** Filesystem use against the watermarks, and every entry the caller may see. */
export async function status(config: Config, usageSource: UsageSource = statfsUsage): Promise<Status> {
  const usage = await usageSource(config.dataPath);
  const scan = await scanEntries(config.dataPath);
  const entries: StatusEntry[] = [];
  // Per user, in the order the collector would evict them: least recently used first.
  const ordered = scan.entries.sort((a, b) => a.uid - b.uid || a.lastUsed.getTime() - b.lastUsed.getTime());
  for (const entry of ordered) {
    const { meta, inUse } = inspect(entry.path);
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
  return {
    node: nodeName(),
    base: config.dataPath,
    usage: round(usage.percent),
    usedBytes: usage.usedBytes,
    availableBytes: usage.availableBytes,
    high: config.gcHigh,
    low: config.gcLow,
    entries,
    problems: scan.problems,
  };
}
