import { CacheError } from "./errors.ts";
import { hashedName } from "./layout.ts";
import type { RegistryImage } from "./resolve.ts";

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

/**
 * A registry reference (resolve.ts), not a squashfs file. Here, beside Image, and not in
 * resolve.ts: a file's warm path loads nothing of the registry's.
 */
export function isRegistryImage(image: Image | RegistryImage): image is RegistryImage {
  return "reference" in image;
}

/** What an image is called in records and reports: a file's resolved path, or the reference as given. */
export function imageText(image: Image | RegistryImage): string {
  return isRegistryImage(image) ? image.reference.text : image.path;
}

/** The squashfs 4 superblock fields we use. */
export interface Superblock {
  inodes: number;
  blockSize: number;
  compressor: number;
  bytesUsed: number;
  /** Where the inode table starts, and the directory table (which ends it). */
  inodeTableStart: number;
  directoryTableStart: number;
}

const SUPERBLOCK_BYTES = 96;
/** How much of the image's tail (its metadata tables) goes into the identity. */
const TAIL_BYTES = 64 * 1024;

function readU64(view: DataView, offset: number): number {
  return Number(view.getBigUint64(offset, true));
}

/** Parses and checks a squashfs 4 superblock against the file it heads. */
function parseSuperblock(block: Uint8Array, fileBytes: number, path: string): Superblock {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (block.byteLength < SUPERBLOCK_BYTES || view.getUint32(0, true) !== 0x73717368) {
    throw new CacheError(`not a squashfs image: ${path}`);
  }
  const superblock: Superblock = {
    inodes: view.getUint32(4, true),
    blockSize: view.getUint32(12, true),
    compressor: view.getUint16(20, true),
    bytesUsed: readU64(view, 40),
    inodeTableStart: readU64(view, 64), // the first metadata table
    directoryTableStart: readU64(view, 72),
  };
  const blockLog = view.getUint16(22, true);
  const major = view.getUint16(28, true);
  const { blockSize, bytesUsed, inodeTableStart } = superblock;
  if (major !== 4 || blockSize !== 2 ** blockLog || blockSize < 4096 || inodeTableStart > bytesUsed) {
    throw new CacheError(`corrupt squashfs superblock: ${path}`);
  }
  if (bytesUsed > fileBytes) {
    throw new CacheError(`truncated squashfs image: ${path} (${fileBytes} of ${bytesUsed} bytes)`);
  }
  return superblock;
}

/** Up to `length` bytes of `file` from `offset`: fewer only at the end of the file. */
export async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}

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
