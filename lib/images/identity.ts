import { CacheError } from "../os/errors.ts";
import { hashedName } from "../layout.ts";
import { parseSuperblock, readAt, type Superblock, SUPERBLOCK_BYTES } from "./squashfs.ts";

/** What we know about an image once it has passed its checks. */
export interface Image {
  /** The resolved path: symlinks followed, relative paths made absolute. */
  path: string;
  /** Its entry name for the given uid. */
  name: string;
  bytes: number;
  /**
   * The file identified (st_dev, st_ino of the descriptor read): a cold step's FUSE daemon
   * checks that the file it opens is this one, not another put in its name since.
   */
  device: number;
  inode: number;
  /** Its superblock, read and checked once here (squashfs.ts reads the inode table it points to). */
  superblock: Superblock;
}

/** How much of the image's tail (its metadata tables) goes into the identity. */
const TAIL_BYTES = 64 * 1024;

function openError(error: unknown, path: string): CacheError {
  if (error instanceof Deno.errors.NotFound) return new CacheError(`image not found: ${path}`);
  if (error instanceof Deno.errors.PermissionDenied) {
    return new CacheError(`cannot read image: ${path}: permission denied`);
  }
  return new CacheError(`cannot read image: ${path}: ${(error as Error).message}`);
}

/**
 * Checks that `image` is a readable squashfs file and names its entry.
 *
 * The name is stable for one file and changes when the file is replaced
 * (new inode) or rewritten in place: the hash covers inode, size, mtime and
 * ctime, and the superblock and metadata tail, which differ between any two
 * builds of different trees even of equal size in the same second.
 */
export async function identify(image: string, uid: number, cwd: string): Promise<Image> {
  const given = image.startsWith("/") ? image : `${cwd}/${image}`;
  let path: string;
  let file: Deno.FsFile;
  try {
    path = await Deno.realPath(given);
    if (!(await Deno.stat(path)).isFile) throw new CacheError(`image is not a regular file: ${image}`);
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw error instanceof CacheError ? error : openError(error, image);
  }
  try {
    const info = await file.stat();
    const superblock = await readAt(file, 0, SUPERBLOCK_BYTES);
    const parsed = parseSuperblock(superblock, info.size, image);
    const bytesUsed = parsed.bytesUsed;
    const tailStart = Math.max(SUPERBLOCK_BYTES, bytesUsed - TAIL_BYTES);
    const tail = await readAt(file, tailStart, bytesUsed - tailStart);
    const stamp = [uid, path, info.ino, info.size, info.mtime?.getTime(), info.ctime?.getTime()];
    const head = new TextEncoder().encode(stamp.join("\0"));
    const material = new Uint8Array(head.length + superblock.length + tail.length);
    material.set(head);
    material.set(superblock, head.length);
    material.set(tail, head.length + superblock.length);
    return {
      path,
      name: await hashedName(uid, material),
      bytes: info.size,
      device: info.dev,
      inode: info.ino ?? 0,
      superblock: parsed,
    };
  } catch (error) {
    if (error instanceof CacheError) throw error;
    throw openError(error, image);
  } finally {
    file.close();
  }
}
