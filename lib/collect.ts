import type { Config } from "./config.ts";
import { type Entry, type Leftover, openEntryLock, scanEntries } from "./entries.ts";
import { createLockPath, entryPath, GC_LOCK_MODE, gcLockPath, trashPath, userGcLockPath } from "./layout.ts";
import { recordGcRun } from "./gcstate.ts";
import { openLockFile, tryLockExclusive } from "./lock.ts";
import { OutOfTime, removeTree } from "./files.ts";
import { round, statfsUsage, type UsageSource } from "./usage.ts";
import { isRoot, self } from "./users.ts";
import { describe } from "./errors.ts";

export interface CollectOptions {
  dryRun?: boolean;
  /** Where filesystem use comes from; statfs(2) by default. */
  usage?: UsageSource;
  /** Evict down to the low watermark even when use is below the high one (a full disk). */
  force?: boolean;
  /** A temporary directory whose unpack is not running is removed once this old. */
  staleAfterSeconds?: number;
  /** Only this user's entries. */
  uid?: number;
  /** Evict every entry not in use, whatever the watermarks say. */
  all?: boolean;
  /** Keep evicting past the low watermark until this much space is available (an unpack that did not fit). */
  freeBytes?: number;
  /** Seconds of removal one user's directory may take of this run (USER_SECONDS by default). */
  userSeconds?: number;
}

export interface Evicted {
  name: string;
  uid: number;
  path: string;
  bytes: number;
  lastUsed: string;
  image: string | null;
}

export interface Collection {
  /** Another collector held the lock: this one did nothing. */
  skipped: boolean;
  dryRun: boolean;
  usageBefore: number;
  usageAfter: number;
  high: number;
  low: number;
  evicted: Evicted[];
  skippedInUse: { name: string; uid: number; path: string }[];
  removedLeftovers: string[];
  /** Evictions and removals that did not happen, one line each: gc exits 1. */
  failures: string[];
  /** Things found and not trusted, or counters not recorded, one line each: warnings. */
  problems: string[];
}

export const STALE_AFTER_SECONDS = 60;
/**
 * What one user's directory may cost a run: removing its leftovers and its evicted
 * entries ends this many seconds after the run first touched it. A user can feed a
 * tree of their own (a leftover, or an entry being evicted) as fast as root removes
 * it; without a bound that held root's collector, its lock and every eviction for as
 * long as they liked. A tree cut short is one failure line; the next run goes on with it.
 */
export const USER_SECONDS = 60;

/** Each user's share of a run's time: when removal in their directory must end. */
class Budgets {
  readonly #until = new Map<number, number>();
  /** Users whose share ran out, said once each. */
  readonly spent = new Set<number>();
  constructor(readonly seconds: number) {}
  /** When removal in `uid`'s directory must end: `seconds` after it first began in this run. */
  until(uid: number): number {
    let until = this.#until.get(uid);
    if (until === undefined) this.#until.set(uid, until = performance.now() + this.seconds * 1000);
    return until;
  }
  /** Whether `uid`'s share is used up: nothing more of theirs is removed in this run. */
  over(uid: number): boolean {
    const until = this.#until.get(uid);
    return this.spent.has(uid) || (until !== undefined && performance.now() > until);
  }
  /** Removes `path` in `uid`'s directory within their share. */
  async remove(uid: number, path: string): Promise<void> {
    try {
      await removeTree(path, this.seconds, this.until(uid));
    } catch (error) {
      if (error instanceof OutOfTime) this.spent.add(uid);
      throw error;
    }
  }
  /** The failure line for a tree cut short. */
  line(uid: number, path: string): string {
    return `${path}: not removed within the ${this.seconds} s uid ${uid}'s directory may take of a run ` +
      `(names kept appearing in it, or it is that large): the rest is left for the next run`;
  }
}
/**
 * A registry reference's record not rewritten for this long (every start past the interval
 * rewrites it) is of a reference nobody starts: it goes, and the next start asks the registry.
 */
export const RECORD_MAX_AGE_SECONDS = 30 * 86400;

/**
 * Holds the collector lock, or says that another collector does. Root's
 * collector takes the global lock, which only root can open (a user holding it
 * would stop every collection); a user's collector, which can only reach their
 * own entries, takes a lock in their own directory.
 */
async function lockCollector(base: string): Promise<Deno.FsFile | undefined> {
  let file: Deno.FsFile;
  try {
    file = isRoot()
      ? await openLockFile(gcLockPath(base), GC_LOCK_MODE)
      : await openLockFile(userGcLockPath(base, self().uid));
  } catch (error) {
    // No directory of one's own yet (`prepare` has not run): nothing to collect.
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) return undefined;
    throw error;
  }
  if (await file.tryLock(true)) return file;
  file.close();
  return undefined;
}

/** Whether anything is at `path`, not following a symlink; in doubt, yes. */
function occupied(path: string): Promise<boolean> {
  return Deno.lstat(path).then(() => true, (error) => !(error instanceof Deno.errors.NotFound));
}

/**
 * Removes temporaries whose unpack died, evictions that did not finish, dead steps' rootfs,
 * the mount points of dead cold steps (empty outside the step's own mount namespace),
 * and creation locks nobody holds of entries that do not exist (a create that failed).
 */
async function removeLeftovers(
  base: string,
  leftovers: Leftover[],
  staleAfter: number,
  budgets: Budgets,
  result: Collection,
) {
  for (const leftover of leftovers) {
    // A user whose share of this run is spent: the rest of theirs is the next run's.
    if (budgets.over(leftover.uid)) continue;
    const age = leftover.kind === "record" ? RECORD_MAX_AGE_SECONDS : leftover.kind === "trash" ? 0 : staleAfter;
    if (Date.now() - leftover.mtime.getTime() < age * 1000) continue;
    // The creator holds the creation lock for as long as its unpack runs; a step, its directory.
    const lock = leftover.kind === "temp" || leftover.kind === "create"
      ? tryLockExclusive(createLockPath(base, leftover.uid, leftover.name))
      : leftover.kind === "step" || leftover.kind === "mount"
      ? tryLockExclusive(leftover.path, "directory")
      : "missing";
    if (lock === "busy") continue;
    // Nobody creates the entry without this lock; a creator that takes it after its removal finds the
    // file gone and starts again on a new one (lockExclusive).
    if (
      leftover.kind === "create" && (lock === "missing" || await occupied(entryPath(base, leftover.uid, leftover.name)))
    ) {
      if (lock !== "missing") lock.close();
      continue;
    }
    try {
      if (!result.dryRun) await budgets.remove(leftover.uid, leftover.path);
      result.removedLeftovers.push(leftover.path);
    } catch (error) {
      result.failures.push(
        error instanceof OutOfTime
          ? budgets.line(leftover.uid, leftover.path)
          : `${leftover.path}: cannot remove: ${describe(error)}`,
      );
    } finally {
      if (lock !== "missing") lock.close();
    }
  }
}

/**
 * Evicts one entry while holding its lock exclusively: first renamed out of
 * its name (rename(2) moves a planted symlink itself, never its target), then
 * removed. A killed eviction leaves only a trash directory for the next run.
 */
async function evict(base: string, entry: Entry, budgets: Budgets): Promise<boolean> {
  const trash = trashPath(base, entry.uid, entry.name);
  try {
    await Deno.rename(entry.path, trash);
  } catch (error) {
    // A user's own collector and root's may both have chosen it: already gone.
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  await budgets.remove(entry.uid, trash);
  const creator = tryLockExclusive(createLockPath(base, entry.uid, entry.name));
  if (typeof creator !== "string") {
    await Deno.remove(createLockPath(base, entry.uid, entry.name)).catch(() => {});
    creator.close();
  }
  return true;
}

/** Adds this run to the counters in `<base>`; a failure to is one more problem. */
async function recordRun(base: string, result: Collection): Promise<void> {
  const failed = result.failures.length > 0;
  const bytesFreed = result.evicted.reduce((sum, e) => sum + e.bytes, 0);
  try {
    await recordGcRun(base, {
      evictions: result.evicted.length,
      bytesFreed,
      failures: result.failures.length,
      ok: !failed,
    });
  } catch (error) {
    result.problems.push(`${base}: cannot record gc counters: ${describe(error)}`);
  }
}

/**
 * The collector: one at a time; least recently used first; skips entries in
 * use; stops at the low watermark.
 */
export async function collect(config: Config, options: CollectOptions = {}): Promise<Collection> {
  const base = config.dataPath;
  const usageOf = options.usage ?? statfsUsage;
  const result: Collection = {
    skipped: false,
    dryRun: options.dryRun ?? false,
    usageBefore: 0,
    usageAfter: 0,
    high: config.gcHigh,
    low: config.gcLow,
    evicted: [],
    skippedInUse: [],
    removedLeftovers: [],
    failures: [],
    problems: [],
  };
  const gcLock = await lockCollector(base);
  if (!gcLock) return { ...result, skipped: true };
  const budgets = new Budgets(options.userSeconds ?? USER_SECONDS);
  try {
    const before = await usageOf(base);
    result.usageBefore = result.usageAfter = round(before.percent);
    // Deciding needs only names and mtimes: records are read for the entries that go.
    const scan = await scanEntries(base, { uid: options.uid });
    result.problems.push(...scan.problems);
    await removeLeftovers(base, scan.leftovers, options.staleAfterSeconds ?? STALE_AFTER_SECONDS, budgets, result);

    let usage = await usageOf(base);
    const total = usage.usedBytes + usage.availableBytes;
    const start = options.all || options.force || usage.percent >= config.gcHigh;
    if (!start) return { ...result, usageAfter: round(usage.percent) };
    const oldestFirst = scan.entries.sort((a, b) =>
      a.lastUsed.getTime() - b.lastUsed.getTime() || a.name.localeCompare(b.name)
    );
    let freed = 0;
    for (const entry of oldestFirst) {
      const roomy = usage.availableBytes >= (options.freeBytes ?? 0);
      if (!options.all && usage.percent <= config.gcLow && roomy) break;
      // Its user's share of this run is spent: their entries wait for the next run.
      if (!result.dryRun && budgets.over(entry.uid)) continue;
      // One open gives the lock to try and the record to report (an entry without one is evicted all the same).
      const opened = openEntryLock(entry.path);
      // Swapped away since the scan: what is there now is for the next run to judge.
      if (opened === "gone") continue;
      const lock = opened === "busy" ? undefined : opened;
      if (opened === "busy" || (lock && !lock.file.tryLock(true))) {
        lock?.file.close();
        result.skippedInUse.push({ name: entry.name, uid: entry.uid, path: entry.path });
        continue;
      }
      const meta = lock?.meta;
      try {
        const bytes = meta?.bytes ?? 0;
        if (!result.dryRun && !(await evict(base, entry, budgets))) continue;
        result.evicted.push({
          name: entry.name,
          uid: entry.uid,
          path: entry.path,
          bytes,
          lastUsed: entry.lastUsed.toISOString(),
          image: meta?.image ?? null,
        });
        freed += bytes;
      } catch (error) {
        result.failures.push(
          error instanceof OutOfTime
            ? budgets.line(entry.uid, entry.path)
            : `${entry.path}: cannot evict: ${describe(error)}`,
        );
      } finally {
        lock?.file.close();
      }
      usage = result.dryRun
        ? { ...before, percent: total === 0 ? 0 : ((before.usedBytes - freed) * 100) / total }
        : await usageOf(base);
    }
    result.usageAfter = round(usage.percent);
    return result;
  } finally {
    // The counters behind the metrics, still under the collector lock (only root may write <base>).
    if (!result.dryRun && isRoot()) await recordRun(base, result);
    gcLock.close();
  }
}
