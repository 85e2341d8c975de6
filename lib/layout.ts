/**
 * Where everything lives under the cache root `<base>`:
 *
 *   <base>/pyxis-container-cache-gc.lock       one collector at a time (0600: users cannot hold it)
 *   <base>/.pyxis_cache_staging.<r>/           root's private room to chown an entry's records
 *   <base>/pyxis-cache-gc.state.json           the collector's counters, for metrics
 *   <base>/.pyxis_cache_answers/<uid>.<hash>   root's record of the entry `reuse` named for a squashfs file,
 *                                              with the file's identity (the stub's answers.c; 0700/0600
 *                                              root): not a uid's, so the collector and status skip it
 *   <base>/<uid>/                              0700, owned by the user
 *   <base>/<uid>/.pyxis_cache_gc.lock          a user's own collection (root's gc takes the one above)
 *   <base>/<uid>/pyxis_cache_u<uid>_<hash>/    an entry: the rootfs itself
 *     .pyxis_cache_lock                        held shared while a step uses it; holds the entry's
 *                                              record (JSON: image, size, time of creation)
 *   <base>/<uid>/.pyxis_cache_create.<name>    held exclusively while creating <name>
 *   <base>/<uid>/.pyxis_cache_ref.<hash>       a registry reference's digest, and when it was asked
 *   <base>/<uid>/.pyxis_cache_ref.<hash>.lock  held by whoever asks the registry about it
 *   <base>/<uid>/.pyxis_cache_tmp.<name>.<r>   an unpack, or an enroot import, in progress (or killed)
 *   <base>/<uid>/.pyxis_cache_trash.<name>.<r> an eviction in progress (or killed)
 *   <base>/<uid>/.pyxis_cache_mnt.<name>.<job>.<step>.<r>/
 *                                              a cache-mode step's mount point for <name> (its own
 *                                              layer over the entry, or over the image's FUSE mount
 *                                              for a cold step; mounted in the step's own mount
 *                                              namespace only): the SPANK stub holds it locked while
 *                                              the step runs
 *   <base>/<uid>/.pyxis_cache_step_<job>.<step>.<r>/
 *                                              a step's own directory, made by `pyxis-cache step`: its rootfs
 *                                              without --container-cache, enroot's paths with the enroot runtime;
 *                                              the SPANK stub holds it locked while the step runs
 *   <base>/<uid>/.pyxis_cache_named.<job>.<hex>/ a named container (--container-name, its name hex-encoded;
 *   <base>/<uid>/.pyxis_cache_named.g.<hex>/     `g`: container_scope=global): upper/ and work/, its overlay
 *                                              layer over the entry that `entry` names; the SPANK stub holds
 *                                              it locked while a step uses it; removed by the job's epilog
 *                                              (`release --job`), or by the collector once unused for long
 */

import { randomSuffix } from "./files.ts";

export const GC_LOCK_FILE = "pyxis-container-cache-gc.lock";
/** Only root may open the global collector lock: a user holding it would stop every collection. */
export const GC_LOCK_MODE = 0o600;
export const GC_STATE_FILE = "pyxis-cache-gc.state.json";
export const LOCK_FILE = ".pyxis_cache_lock";
/** A user's own collector lock, in `<base>/<uid>`. */
export const USER_GC_LOCK_FILE = ".pyxis_cache_gc.lock";

export const STAGING_PREFIX = ".pyxis_cache_staging.";

export const ENTRY_NAME = /^pyxis_cache_u(\d+)_([0-9a-f]{20})$/;
export const TEMP_NAME = /^\.pyxis_cache_tmp\.(pyxis_cache_u\d+_[0-9a-f]{20})\.[0-9a-f]+$/;
export const CREATE_NAME = /^\.pyxis_cache_create\.(pyxis_cache_u\d+_[0-9a-f]{20})$/;
export const TRASH_NAME = /^\.pyxis_cache_trash\.(pyxis_cache_u\d+_[0-9a-f]{20})\.[0-9a-f]+$/;
/** A registry reference's record (known.ts), its lock, or a record being written. */
export const RECORD_NAME = /^\.pyxis_cache_ref\.[0-9a-f]{20}(\.lock|\.[0-9a-f]+\.new)?$/;
export const MOUNT_NAME = /^\.pyxis_cache_mnt\.(pyxis_cache_u\d+_[0-9a-f]{20})\.\d+\.\d+\.[A-Za-z0-9]{6}$/;
export const STEP_NAME = /^\.pyxis_cache_step_\d+\.\d+\.[A-Za-z0-9]{6}$/;
/** A named container's directory: the job's (or `g`, container_scope=global), and the name in hex. */
export const NAMED_NAME = /^\.pyxis_cache_named\.(\d+|g)\.((?:[0-9a-f]{2}){1,100})$/;

export function entryName(uid: number, hash: string): string {
  return `pyxis_cache_u${uid}_${hash}`;
}

/** The first 80 bits of SHA-256 over `material`, in hex: the hash of names. */
export async function shortHash(material: Uint8Array<ArrayBuffer> | string): Promise<string> {
  const bytes = typeof material === "string" ? new TextEncoder().encode(material) : material;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.subarray(0, 10), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The entry name whose hash covers `material`. */
export async function hashedName(uid: number, material: Uint8Array<ArrayBuffer> | string): Promise<string> {
  return entryName(uid, await shortHash(material));
}

/** What the node knows about a registry reference (known.ts), and the lock of whoever asks the registry. */
export async function knownPath(base: string, uid: number, reference: string): Promise<string> {
  return `${base}/${uid}/.pyxis_cache_ref.${await shortHash(reference)}`;
}

export function userDir(base: string, uid: number): string {
  return `${base}/${uid}`;
}

export function entryPath(base: string, uid: number, name: string): string {
  return `${base}/${uid}/${name}`;
}

export function lockPath(entry: string): string {
  return `${entry}/${LOCK_FILE}`;
}

export function gcLockPath(base: string): string {
  return `${base}/${GC_LOCK_FILE}`;
}

export function gcStatePath(base: string): string {
  return `${base}/${GC_STATE_FILE}`;
}

export function userGcLockPath(base: string, uid: number): string {
  return `${base}/${uid}/${USER_GC_LOCK_FILE}`;
}

export function createLockPath(base: string, uid: number, name: string): string {
  return `${base}/${uid}/.pyxis_cache_create.${name}`;
}

export function tempPath(base: string, uid: number, name: string): string {
  return `${base}/${uid}/.pyxis_cache_tmp.${name}.${randomSuffix()}`;
}

export function trashPath(base: string, uid: number, name: string): string {
  return `${base}/${uid}/.pyxis_cache_trash.${name}.${randomSuffix()}`;
}

/** A new name for a step's own rootfs directory (matches STEP_NAME; the stub checks it too). */
export function stepName(job: number, step: number): string {
  return `.pyxis_cache_step_${job}.${step}.${randomSuffix().padStart(8, "0").slice(-6)}`;
}
