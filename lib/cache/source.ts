/**
 * What the user named, as something that becomes a squashfs file, then a tree: a squashfs
 * file is one already; a registry image becomes one by `enroot import` as the job user.
 * Which of the two a `--container-image` is, reference.ts's isReference decides, here only;
 * `reuse --no-wait` tells the SPANK stub (which never guesses). A file's warm path loads
 * nothing of the registry's, nor of the cold path's.
 */
import type { Config } from "../config/config.ts";
import { CacheError, describe } from "../os/errors.ts";
import { identify, type Image } from "../images/identity.ts";
import { createLockPath, tempPath } from "../layout.ts";
import { isReference } from "../registry/reference.ts";
import type { RegistryImage } from "../registry/resolve.ts";
import type { UsageSource } from "../os/usage.ts";
import type { Owner } from "../os/users.ts";

export type ImageSource = Image | RegistryImage;

export function isRegistryImage(image: ImageSource): image is RegistryImage {
  return "reference" in image;
}

/** What an image is called in records and reports: a file's resolved path, or the reference as given. */
export function imageText(image: ImageSource): string {
  return isRegistryImage(image) ? image.reference.text : image.path;
}

/** What an entry's record says it came from. */
export function imageRecord(image: ImageSource): { image: string; digest?: string } {
  return isRegistryImage(image) ? { image: image.reference.text, digest: image.digest } : { image: image.path };
}

/**
 * A squashfs file or a registry reference, named for `owner` (a registry reference: by
 * the digest its tag names, through the node's record; without a configuration, asking
 * the registry: resolve.ts).
 */
export async function identifyImage(
  config: Config | undefined,
  image: string,
  owner: Owner,
  cwd: string,
): Promise<ImageSource> {
  if (!isReference(image, cwd)) return await identify(image, owner.uid, cwd);
  const { identifyReference } = await import("../registry/resolve.ts");
  return await identifyReference(config, image, owner);
}

/**
 * A registry image that could not be named or imported: pyxis's words first (its
 * docker_image.bats looks for them: `failed to import docker image: IMG`), then why.
 */
export function importFailed(text: string, error: unknown): CacheError {
  return new CacheError(`failed to import docker image: ${text}: ${describe(error)}`);
}

/** identifyImage for a step that runs the image (reuse, step): what the registry refused is importFailed's. */
export async function identifyToRun(
  config: Config | undefined,
  image: string,
  owner: Owner,
  cwd: string,
): Promise<ImageSource> {
  try {
    return await identifyImage(config, image, owner, cwd);
  } catch (error) {
    if (!isReference(image, cwd)) throw error;
    const { RegistryError } = await import("../registry/resolve.ts");
    throw error instanceof RegistryError ? importFailed(image, error) : error;
  }
}

export interface SquashfsOptions {
  usage?: UsageSource;
  /** The caller holds the entry's creation lock already (a creator); else an import takes it. */
  creating?: boolean;
}

/**
 * `use` of the squashfs file `image` is or becomes. A registry image is imported as `owner`
 * into a temporary directory of its entry, under the entry's creation lock (so that a killed
 * import is cleared away like a killed unpack: by the next creator, or the collector, and
 * neither takes a live one for a dead one's), making room on a full disk; the directory, its
 * squashfs and enroot's layer cache go once `use` is done.
 */
export async function withSquashfs<T>(
  config: Config,
  image: ImageSource,
  owner: Owner,
  use: (squashfs: Image) => Promise<T>,
  options: SquashfsOptions = {},
): Promise<T> {
  if (!isRegistryImage(image)) return await use(image);
  const [{ enrootImport }, { makingRoom }, { removeTree }, { lockExclusive }, { placeAsOwner }] = await Promise.all([
    import("../registry/enroot.ts"),
    import("./room.ts"),
    import("../os/files.ts"),
    import("../store/lock.ts"),
    import("../store/place.ts"),
  ]);
  const creating = options.creating
    ? undefined
    : await lockExclusive(createLockPath(config.dataPath, owner.uid, image.name));
  let work = "";
  try {
    const attempt = async () => {
      work = tempPath(config.dataPath, owner.uid, image.name);
      await placeAsOwner(config, work, null, owner);
      return await enrootImport(image.reference, work, owner);
    };
    const squashfs = await makingRoom(config, 0, attempt, () => removeTree(work), options.usage)
      .catch((error) => Promise.reject(importFailed(image.reference.text, error)));
    return await use(await identify(squashfs, owner.uid, "/"));
  } finally {
    if (work) await removeTree(work).catch(() => {});
    creating?.close();
  }
}
