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
 *                                              (`release --job`), or by the collector once unused for long.
 *                                              Also `running` (the record of the step that runs it, which
 *                                              steps attach to) and `attached` (held by those steps); an
 *                                              unnamed cache-mode step makes the one of the name `<job>.<step>`
 *                                              for its record, and removes it at its end (spank-stub/attach.c)
 */

/*
 * What the SPANK stub shares with the command. spank-stub/layout.gen.h is generated from these
 * (scripts/layout-header.ts, run by spank-stub/Makefile), and tests/protocol.test.ts fails when
 * the stub spells any of them itself.
 */

/** The hash in an entry's name: the first 80 bits of SHA-256, in hex digits. */
export const HASH_HEX = 20;
/** An entry's name: this, the uid, `_`, the hash. */
export const ENTRY_PREFIX = "pyxis_cache_u";
/** In an entry: held shared while a step uses it; holds the entry's record. */
export const LOCK_FILE = ".pyxis_cache_lock";
/** A cold step's mount point: this, the entry's name, `.<job>.<step>.`, the tail. */
export const MOUNT_PREFIX = ".pyxis_cache_mnt.";
/** A step's own directory: this, `<job>.<step>.`, the tail. */
export const STEP_PREFIX = ".pyxis_cache_step_";
/** A named container's directory (--container-name): this, the job (or `g`), `.`, the name in hex. */
export const NAMED_PREFIX = ".pyxis_cache_named.";
/** In `<base>`: root's records of the entries the command named for squashfs files (the stub's answers.c). */
export const ANSWERS_DIR = ".pyxis_cache_answers";
/** The random tail of a mount point's and a step directory's name: letters and digits (mkdtemp's six). */
export const TAIL_ALNUM = 6;
/**
 * The system's directories, whatever the caller's PATH says: the command's unsquashfs gets this
 * PATH (and enroot it when the command has none). In the stub (PYXIS_CACHE_PATH, child.h's PATH
 * policy, docs/srun.md "The stub's children"): the start of the PATH of the command it runs
 * (slurmd's follows), squashfuse_ll's and mksquashfs's PATH, and where the stub looks for what it
 * runs when slurmd has no PATH.
 */
export const SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** `reuse --no-wait`'s reply: `<name> <state> <kind>`, a word of each (reuse.ts). */
export const ENTRY_STATES = ["ready", "unpacking", "absent"] as const;
export const IMAGE_KINDS = ["file", "registry"] as const;

export const GC_LOCK_FILE = "pyxis-container-cache-gc.lock";
/** Only root may open the global collector lock: a user holding it would stop every collection. */
export const GC_LOCK_MODE = 0o600;
export const GC_STATE_FILE = "pyxis-cache-gc.state.json";
/** A user's own collector lock, in `<base>/<uid>`. */
export const USER_GC_LOCK_FILE = ".pyxis_cache_gc.lock";

export const STAGING_PREFIX = ".pyxis_cache_staging.";

/** A registry image's manifest digest, as references pin it and records (an entry's, known.ts's) hold it. */
export const MANIFEST_DIGEST = /^sha256:[0-9a-f]{64}$/;

const HASH = `[0-9a-f]{${HASH_HEX}}`;
const ENTRY = String.raw`${ENTRY_PREFIX}\d+_${HASH}`;
const TAIL = `[A-Za-z0-9]{${TAIL_ALNUM}}`;
const dots = (text: string) => text.replaceAll(".", "\\.");
export const ENTRY_NAME = new RegExp(String.raw`^${ENTRY_PREFIX}(\d+)_(${HASH})$`);
export const TEMP_NAME = new RegExp(String.raw`^\.pyxis_cache_tmp\.(${ENTRY})\.[0-9a-f]+$`);
export const CREATE_NAME = new RegExp(String.raw`^\.pyxis_cache_create\.(${ENTRY})$`);
export const TRASH_NAME = new RegExp(String.raw`^\.pyxis_cache_trash\.(${ENTRY})\.[0-9a-f]+$`);
/** A registry reference's record (known.ts), its lock, or a record being written. */
export const RECORD_NAME = new RegExp(String.raw`^\.pyxis_cache_ref\.${HASH}(\.lock|\.[0-9a-f]+\.new)?$`);
export const MOUNT_NAME = new RegExp(String.raw`^${dots(MOUNT_PREFIX)}(${ENTRY})\.\d+\.\d+\.${TAIL}$`);
export const STEP_NAME = new RegExp(String.raw`^${dots(STEP_PREFIX)}\d+\.\d+\.${TAIL}$`);
/** A named container's directory: the job's (or `g`, container_scope=global), and the name in hex. */
export const NAMED_NAME = new RegExp(String.raw`^${dots(NAMED_PREFIX)}(\d+|g)\.((?:[0-9a-f]{2}){1,100})$`);

/** A random hex suffix for temporary names. */
export function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16);
}

export function entryName(uid: number, hash: string): string {
  return `${ENTRY_PREFIX}${uid}_${hash}`;
}

/** The first 80 bits of SHA-256 over `material`, in hex: the hash of names. */
export async function shortHash(material: Uint8Array<ArrayBuffer> | string): Promise<string> {
  const bytes = typeof material === "string" ? new TextEncoder().encode(material) : material;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.subarray(0, HASH_HEX / 2), (b) => b.toString(16).padStart(2, "0")).join("");
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
  return `${STEP_PREFIX}${job}.${step}.${randomSuffix().padStart(8, "0").slice(-TAIL_ALNUM)}`;
}
