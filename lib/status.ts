import type { Config } from "./config.ts";
import { scanEntries } from "./entries.ts";
import { lockPath } from "./layout.ts";
import { tryLockExclusive } from "./lock.ts";
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

/** An entry is in use while some step holds its lock. */
async function inUse(entry: string): Promise<boolean> {
  const lock = await tryLockExclusive(lockPath(entry));
  if (lock === "busy") return true;
  if (lock !== "missing") lock.close();
  return false;
}

/** Filesystem use against the watermarks, and every entry the caller may see. */
export async function status(config: Config, usageSource: UsageSource = statfsUsage): Promise<Status> {
  const usage = await usageSource(config.dataPath);
  const scan = await scanEntries(config.dataPath, { withMeta: true });
  const entries: StatusEntry[] = [];
  // Per user, in the order the collector would evict them: least recently used first.
  const ordered = scan.entries.sort((a, b) => a.uid - b.uid || a.lastUsed.getTime() - b.lastUsed.getTime());
  for (const entry of ordered) {
    entries.push({
      name: entry.name,
      uid: entry.uid,
      user: lookupUid(entry.uid)?.name ?? String(entry.uid),
      path: entry.path,
      bytes: entry.meta?.bytes ?? null,
      lastUsed: entry.lastUsed.toISOString(),
      inUse: await inUse(entry.path),
      image: entry.meta?.image ?? null,
      createdAt: entry.meta?.createdAt ?? null,
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
