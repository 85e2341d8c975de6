import type { Config } from "../config/config.ts";
import { type Entry, mountedAt, openEntryLock, type Scan, scanEntries, shown } from "../store/entries.ts";
import { createLockPath, entryPath, GC_LOCK_MODE, gcLockPath, trashPath, userGcLockPath } from "../layout.ts";
import { recordGcRun } from "../store/gcstate.ts";
import { openLockFile, tryLockExclusive } from "../store/lock.ts";
import { OutOfTime, removeTree, removeTreeAt } from "../os/files.ts";
import { round, statfsUsage, type UsageSource } from "../os/usage.ts";
import { isRoot, self } from "../os/users.ts";
import { CacheError, describe } from "../os/errors.ts";
import { type Holding, holdings, limitBytes } from "../store/holdings.ts";

export interface CollectOptions {
  dryRun?: boolean;
  /** Where filesystem use comes from; statfs(2) by default. */
  usage?: UsageSource;
  /** Evict down to the low watermark even when use is below the high one (a full disk). */
  force?: boolean;
  /** A temporary directory whose unpack is not running is removed once this old. */
  staleAfterSeconds?: number;
  /**
   * A name in `<base>/<uid>` that is not the cache's is removed once it did not change for this
   * long (staleAfterSeconds by default): a create in a hurry removes dead unpacks at once, not
   * what a user wrote a moment ago.
   */
  foreignAfterSeconds?: number;
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
  /** Users above container_cache_user_limit after this run (their entries in use were kept). */
  overLimit?: { uid: number; bytes: number; limitBytes: number }[];
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
  /** Removes `path` in `uid`'s directory within their share (`raw`: its last name's bytes). */
  async remove(uid: number, path: string, raw?: Uint8Array): Promise<void> {
    try {
      if (raw) await removeTreeAt(path.slice(0, path.lastIndexOf("/")), raw, this.seconds, this.until(uid));
      else await removeTree(path, this.seconds, this.until(uid));
    } catch (error) {
      if (error instanceof OutOfTime) this.spent.add(uid);
      throw error;
    }
  }
  /** The failure line for a tree cut short. */
  line(uid: number, path: string): string {
    return `${shown(path)}: not removed within the ${this.seconds} s uid ${uid}'s directory may take of a run ` +
      `(names kept appearing in it, or it is that large): the rest is left for the next run`;
  }
}
/**
 * A registry reference's record not rewritten for this long (every start past the interval
 * rewrites it) is of a reference nobody starts: it goes, and the next start asks the registry.
 */
export const RECORD_MAX_AGE_SECONDS = 30 * 86400;

/**
 * A named container (--container-name) that no step has used for this long, and that no step
 * holds, goes. Between its job's steps nothing holds it (the job's epilog removes it at the
 * job's end, container_scope=job); this is for what an epilog never removed (a node that went
 * down, a failed epilog) and for container_scope=global, which pyxis keeps until the user
 * removes it: a week of no use, where the collector cannot tell a live job's from a leftover.
 */
export const NAMED_MAX_AGE_SECONDS = 7 * 86400;

/** A collection that has done nothing yet. */
function emptyCollection(config: Config, dryRun: boolean): Collection {
  return {
    skipped: false,
    dryRun,
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
}

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
  scan: Scan,
  stale: { after: number; foreign: number },
  budgets: Budgets,
  result: Collection,
) {
  for (const leftover of scan.leftovers) {
    // A user whose share of this run is spent: the rest of theirs is the next run's.
    if (budgets.over(leftover.uid)) continue;
    // A name that is not the cache's is stale once neither it nor its inode changed for staleAfter.
    const age = leftover.kind === "record"
      ? RECORD_MAX_AGE_SECONDS
      : leftover.kind === "named"
      ? NAMED_MAX_AGE_SECONDS
      : leftover.kind === "trash"
      ? 0
      : leftover.kind === "foreign"
      ? stale.foreign
      : stale.after;
    if (Date.now() - leftover.mtime.getTime() < age * 1000) continue;
    if (mountedAt(scan, base, leftover.path)) {
      result.problems.push(`${shown(leftover.path)}: a mount point is in it: not removed`);
      continue;
    }
    // The creator holds the creation lock for as long as its unpack runs; a step, its directory.
    const lock = leftover.kind === "temp" || leftover.kind === "create"
      ? tryLockExclusive(createLockPath(base, leftover.uid, leftover.name))
      : leftover.kind === "step" || leftover.kind === "mount" || leftover.kind === "named"
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
      if (!result.dryRun) await budgets.remove(leftover.uid, leftover.path, leftover.raw);
      result.removedLeftovers.push(leftover.path);
    } catch (error) {
      result.failures.push(
        error instanceof OutOfTime
          ? budgets.line(leftover.uid, leftover.path)
          : `${shown(leftover.path)}: cannot remove: ${describe(error)}`,
      );
    } finally {
      if (lock !== "missing") lock.close();
    }
  }
}

/**
 * Tries to evict one entry: skipped when a step holds its lock (or a lease), or its user's
 * share of the run is spent. Returns the bytes its record says it freed, or `undefined`
 * when it did not go.
 */
async function evictOne(base: string, entry: Entry, scan: Scan, budgets: Budgets, result: Collection) {
  // Its user's share of this run is spent: their entries wait for the next run.
  if (!result.dryRun && budgets.over(entry.uid)) return undefined;
  if (mountedAt(scan, base, entry.path)) {
    result.problems.push(`${entry.path}: a mount point is in it: not evicted`);
    return undefined;
  }
  // One open gives the lock to try and the record to report (an entry without one is evicted all the same).
  const opened = openEntryLock(entry.path);
  // Swapped away since the scan: what is there now is for the next run to judge.
  if (opened === "gone") return undefined;
  const lock = opened === "busy" ? undefined : opened;
  if (opened === "busy" || (lock && !lock.file.tryLock(true))) {
    lock?.file.close();
    result.skippedInUse.push({ name: entry.name, uid: entry.uid, path: entry.path });
    return undefined;
  }
  const meta = lock?.meta;
  try {
    const bytes = meta?.bytes ?? 0;
    if (!result.dryRun && !(await evict(base, entry, budgets))) return undefined;
    result.evicted.push({
      name: entry.name,
      uid: entry.uid,
      path: entry.path,
      bytes,
      lastUsed: entry.lastUsed.toISOString(),
      image: meta?.image ?? null,
    });
    return bytes;
  } catch (error) {
    result.failures.push(
      error instanceof OutOfTime
        ? budgets.line(entry.uid, entry.path)
        : `${entry.path}: cannot evict: ${describe(error)}`,
    );
    return undefined;
  } finally {
    lock?.file.close();
  }
}

/** Least recently used first (the name breaks ties, so that runs agree). */
function oldestFirst(entries: Entry[]): Entry[] {
  return entries.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime() || a.name.localeCompare(b.name));
}

/** Each user's holding, with every entry's record read (holdings.ts). */
function holdingsOf(base: string, scan: Scan, problems: string[], gone = new Set<string>()): Map<number, Holding> {
  return holdings(base, scan, (entry) => {
    const lock = openEntryLock(entry.path);
    if (typeof lock !== "object") return undefined;
    lock.file.close();
    return lock.meta?.bytes;
  }, { skip: (leftover) => gone.has(leftover.path), problems });
}

/**
 * container_cache_user_limit: each user above it loses their own least recently used
 * entries not in use until they are not (whatever the watermarks say), before anyone
 * else's entries are considered. Returns the entries left to the watermarks.
 */
async function enforceUserLimits(
  base: string,
  percent: number,
  usage: { usedBytes: number; availableBytes: number },
  scan: Scan,
  budgets: Budgets,
  result: Collection,
): Promise<Entry[]> {
  const limit = limitBytes(percent, usage);
  const held = holdingsOf(base, scan, result.problems, new Set(result.removedLeftovers));
  const left: Entry[] = [];
  const over: Collection["overLimit"] = [];
  for (const entry of oldestFirst(scan.entries)) {
    const holding = held.get(entry.uid)!;
    if (holding.bytes <= limit) {
      left.push(entry);
      continue;
    }
    // Tried once: kept (in use, or its user's share of the run spent) it is not tried again below.
    const bytes = await evictOne(base, entry, scan, budgets, result);
    if (bytes !== undefined) holding.bytes -= bytes;
  }
  for (const holding of held.values()) {
    if (holding.bytes > limit) over.push({ uid: holding.uid, bytes: holding.bytes, limitBytes: limit });
  }
  for (const o of over) {
    result.problems.push(
      `uid ${o.uid} holds ${o.bytes} bytes, above the ${o.limitBytes} that container_cache_user_limit=${percent}% ` +
        `allows: what is left is in use, or not an entry`,
    );
  }
  result.overLimit = over;
  return left;
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

/** The failure of a create that cannot fit within container_cache_user_limit: one line naming it. */
export class UserLimitError extends CacheError {
  override name = "UserLimitError";
}

/**
 * Makes room for a create of about `need` bytes by `uid` within container_cache_user_limit
 * (nothing when it is off): when what the user holds plus `need` is above it, their own
 * least recently used entries not in use go (nobody else's), as far as that helps; when it
 * still cannot fit, UserLimitError. With `evict: false` it only checks (after an unpack:
 * `without` its temporary directory, `need` what it took).
 */
export async function fitUserLimit(
  config: Config,
  uid: number,
  name: string,
  need: number,
  options: { usage?: UsageSource; evict?: boolean; without?: string } = {},
): Promise<void> {
  const percent = config.userLimit;
  if (percent === undefined) return;
  const base = config.dataPath;
  const limit = limitBytes(percent, await (options.usage ?? statfsUsage)(base));
  const scan = await scanEntries(base, { uid });
  const result = emptyCollection(config, false);
  const holding = holdingsOf(base, scan, result.problems, new Set(options.without ? [options.without] : [])).get(uid);
  let held = holding?.bytes ?? 0;
  if (options.evict ?? true) {
    const budgets = new Budgets(USER_SECONDS);
    for (const entry of oldestFirst(scan.entries)) {
      if (held + need <= limit) break;
      if (entry.name === name) continue;
      const bytes = await evictOne(base, entry, scan, budgets, result);
      if (bytes !== undefined) held -= bytes;
    }
  }
  if (held + need <= limit) return;
  const inUse = result.skippedInUse.length ? `, ${result.skippedInUse.length} of its entries in use` : "";
  throw new UserLimitError(
    `cannot create ${name}: uid ${uid} holds ${mib(held)}${inUse} and it needs ${mib(need)} more, above the ` +
      `${mib(limit)} that container_cache_user_limit=${percent}% of the cache filesystem allows`,
  );
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
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
  const result = emptyCollection(config, options.dryRun ?? false);
  const gcLock = await lockCollector(base);
  if (!gcLock) return { ...result, skipped: true };
  const budgets = new Budgets(options.userSeconds ?? USER_SECONDS);
  try {
    const before = await usageOf(base);
    result.usageBefore = result.usageAfter = round(before.percent);
    // Deciding needs only names and mtimes: records are read for the entries that go.
    const scan = await scanEntries(base, { uid: options.uid });
    result.problems.push(...scan.problems);
    const after = options.staleAfterSeconds ?? STALE_AFTER_SECONDS;
    const stale = { after, foreign: options.foreignAfterSeconds ?? after };
    await removeLeftovers(base, scan, stale, budgets, result);

    let usage = await usageOf(base);
    const total = usage.usedBytes + usage.availableBytes;
    let freed = 0;
    let candidates = scan.entries;
    if (config.userLimit !== undefined) {
      candidates = await enforceUserLimits(base, config.userLimit, usage, scan, budgets, result);
      freed = result.evicted.reduce((sum, e) => sum + e.bytes, 0);
      usage = result.dryRun
        ? { ...before, percent: total === 0 ? 0 : ((before.usedBytes - freed) * 100) / total }
        : await usageOf(base);
    }
    const start = options.all || options.force || usage.percent >= config.gcHigh;
    if (!start) return { ...result, usageAfter: round(usage.percent) };
    for (const entry of oldestFirst(candidates)) {
      const roomy = usage.availableBytes >= (options.freeBytes ?? 0);
      if (!options.all && usage.percent <= config.gcLow && roomy) break;
      const bytes = await evictOne(base, entry, scan, budgets, result);
      if (bytes === undefined) continue;
      freed += bytes;
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
