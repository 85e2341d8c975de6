import type { Config } from "../config/config.ts";
import { CacheError } from "../os/errors.ts";
import { identifyToRun, imageText, isRegistryImage } from "./source.ts";
import { createLockPath, ENTRY_STATES, entryPath, IMAGE_KINDS, lockPath } from "../layout.ts";
import { isHeld } from "../store/lock.ts";
import { touch } from "../os/files.ts";
import type { UsageSource } from "../os/usage.ts";
import { isRoot, lookupUid, type Owner, self } from "../os/users.ts";

export interface ReuseOptions {
  image: string;
  /** The job user; the caller's own uid by default. Only root may name another. */
  uid?: number;
  gid?: number;
  /** Against which a relative image path resolves; the process's cwd by default. */
  cwd?: string;
  usage?: UsageSource;
  /**
   * What a cold call does: "wait" (the default) creates the entry, or waits for the
   * creator that holds its creation lock; "no-wait" creates nothing and says whether
   * a creator is at work; "unless-busy" creates it unless a creator is at work already.
   */
  mode?: "wait" | "no-wait" | "unless-busy";
}

/** ready: the entry is there. unpacking: a creator holds its creation lock. absent: neither. */
export type EntryState = typeof ENTRY_STATES[number];
/** What the user named: a squashfs file, or a registry image (reference.ts's isReference decides). */
export type ImageKind = typeof IMAGE_KINDS[number];

export interface Reused {
  name: string;
  /** The rootfs. */
  path: string;
  /** Hold this shared while using the rootfs. */
  lock: string;
  /** This call unpacked the image. */
  created: boolean;
  state: EntryState;
  /** What `--no-wait` tells the stub: only a file can be mounted before it is unpacked. */
  kind: ImageKind;
  seconds: number;
  /** The squashfs file's resolved path, or the registry reference as given. */
  image: string;
  /** A registry image's manifest digest. */
  digest?: string;
  /** A squashfs file's device and inode, as identified (what the stub's FUSE daemon must open). */
  device?: number;
  inode?: number;
  uid: number;
  /** Said on stderr: a registry could not be asked, and the digest the node knew served. */
  warning?: string;
}

function resolveOwner(uid?: number, gid?: number): Owner {
  const me = self();
  const owner = uid ?? me.uid;
  if (owner !== me.uid && !isRoot()) throw new CacheError(`--uid ${owner}: only root may act for another user`);
  if (!isRoot()) return me;
  const group = gid ?? (owner === 0 ? 0 : lookupUid(owner)?.gid);
  if (group === undefined) throw new CacheError(`--uid ${owner}: unknown user, give --gid too`);
  return { uid: owner, gid: group };
}

/**
 * Create-or-reuse: makes sure the image's entry exists, refreshes its mtime
 * and returns where it is. Concurrent callers for one image unpack it once
 * (see publish.ts).
 */
export async function reuse(config: Config, options: ReuseOptions): Promise<Reused> {
  const started = performance.now();
  const owner = resolveOwner(options.uid, options.gid);
  const image = await identifyToRun(config, options.image, owner, options.cwd ?? Deno.cwd());
  const path = entryPath(config.dataPath, owner.uid, image.name);
  const result = (created: boolean, state: EntryState = "ready"): Reused => ({
    name: image.name,
    path,
    lock: lockPath(path),
    created,
    state,
    kind: isRegistryImage(image) ? "registry" : "file",
    seconds: (performance.now() - started) / 1000,
    image: imageText(image),
    ...(isRegistryImage(image)
      ? { digest: image.digest, warning: image.warning }
      : { device: image.device, inode: image.inode }),
    uid: owner.uid,
  });
  if (await touch(path)) return result(false);
  // The warm path ends above: it loads none of the modules that creating an entry needs.
  const mode = options.mode ?? "wait";
  if (mode === "no-wait") {
    // A creator at work holds the creation lock; a dead one holds nothing.
    return result(false, isHeld(createLockPath(config.dataPath, owner.uid, image.name)) ? "unpacking" : "absent");
  }
  const { publish } = await import("./publish.ts");
  const created = await publish(config, image, owner, options.usage, mode === "wait");
  return created === "busy" ? result(false, "unpacking") : result(created);
}
