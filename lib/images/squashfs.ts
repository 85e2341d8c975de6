/**
 * The squashfs 4 format, as far as we read it: the superblock (identity.ts checks every
 * image's), and the disk space an image will take once unpacked, read from its inode table
 * instead of walking the unpacked tree (a walk of 50,000 files costs most of a
 * second; this reads a few hundred KiB of metadata while unsquashfs runs).
 *
 * Squashfs 4 layout: https://dr-emann.github.io/squashfs/ — the inode table is
 * a run of metadata blocks, each a u16 header (bit 15: stored uncompressed; the
 * rest: its size) and up to 8 KiB of data, compressed with the image's compressor.
 */

import { CacheError } from "../os/errors.ts";

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

export const SUPERBLOCK_BYTES = 96;

function readU64(view: DataView, offset: number): number {
  return Number(view.getBigUint64(offset, true));
}

/** Parses and checks a squashfs 4 superblock against the file it heads (`path` names it in errors). */
export function parseSuperblock(block: Uint8Array, fileBytes: number, path: string): Superblock {
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

const GZIP = 1; // the only compressor whose blocks we can inflate (zlib streams)
const METADATA_BLOCK = 8192;
/** What a file system with 4 KiB blocks allocates. */
const BLOCK = 4096;
/** ext4 keeps symlink targets up to 60 bytes in the inode itself. */
const FAST_SYMLINK = 60;

function blocks(bytes: number): number {
  return Math.ceil(bytes / BLOCK) * BLOCK;
}

/** The inode table, decompressed; `undefined` when its compressor is not one we can read. */
async function inodeTable(file: Deno.FsFile, start: number, end: number, compressor: number) {
  const raw = await readAt(file, start, end - start);
  if (raw.length < end - start) return undefined;
  // node:zlib inflates a table three times faster than a DecompressionStream per block, and
  // costs ~3 ms to load on the cold path, which has loaded node:fs for statfs already.
  const { inflateSync } = await import("node:zlib");
  const parts: Uint8Array[] = [];
  for (let at = 0; at + 2 <= raw.length;) {
    const header = raw[at]! | (raw[at + 1]! << 8);
    const size = header & 0x7fff;
    const data = raw.subarray(at + 2, at + 2 + size);
    at += 2 + size;
    if (header & 0x8000) parts.push(data);
    else if (compressor === GZIP) parts.push(inflateSync(data));
    else return undefined;
    if (parts.at(-1)!.length > METADATA_BLOCK) return undefined;
  }
  const table = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    table.set(part, offset);
    offset += part.length;
  }
  return table;
}

/**
 * Sums what each inode takes on a file system with 4 KiB blocks: files by
 * their size, directories one block, long symlinks one block. Hard links are
 * one inode in squashfs, so they count once, as `du` counts them.
 */
function tableBytes(table: Uint8Array, inodes: number, blockSize: number): number | undefined {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const u32 = (at: number) => view.getUint32(at, true);
  const blockList = (size: number, fragment: number) =>
    4 * (fragment === 0xffffffff ? Math.ceil(size / blockSize) : Math.floor(size / blockSize));
  let bytes = 0;
  let at = 0;
  for (let i = 0; i < inodes; i++) {
    if (at + 16 > table.length) return undefined;
    const type = view.getUint16(at, true);
    const body = at + 16;
    switch (type) {
      case 1: // directory
        bytes += BLOCK;
        at = body + 16;
        break;
      case 2: { // file
        const size = u32(body + 12);
        bytes += blocks(size);
        at = body + 16 + blockList(size, u32(body + 4));
        break;
      }
      case 3: // symlink
      case 10: { // symlink with xattrs
        const target = u32(body + 4);
        if (target > FAST_SYMLINK) bytes += BLOCK;
        at = body + 8 + target + (type === 10 ? 4 : 0);
        break;
      }
      case 4: // block and character devices
      case 5:
        at = body + 8;
        break;
      case 6: // fifo and socket
      case 7:
        at = body + 4;
        break;
      case 8: { // directory with an index
        bytes += BLOCK;
        let index = view.getUint16(body + 16, true);
        at = body + 24;
        for (; index > 0; index--) at += 12 + u32(at + 8) + 1;
        break;
      }
      case 9: { // file with xattrs or over 4 GiB
        const size = Number(view.getBigUint64(body + 8, true));
        bytes += blocks(size);
        at = body + 40 + blockList(size, u32(body + 28));
        break;
      }
      case 11: // devices with xattrs
      case 12:
        at = body + 12;
        break;
      case 13: // fifo and socket with xattrs
      case 14:
        at = body + 8;
        break;
      default:
        return undefined;
    }
  }
  return at <= table.length ? bytes : undefined;
}

/**
 * The bytes an image's tree will take once unpacked, or `undefined` when its
 * metadata is compressed with something other than gzip (enroot's default lzo,
 * xz, zstd ...) and the caller must measure the unpacked tree instead. The
 * superblock is the one identify() read and checked.
 */
export async function unpackedBytes(image: { path: string; superblock: Superblock }): Promise<number | undefined> {
  const { inodes, blockSize, compressor, inodeTableStart, directoryTableStart } = image.superblock;
  if (directoryTableStart <= inodeTableStart) return undefined;
  const file = await Deno.open(image.path, { read: true });
  try {
    const table = await inodeTable(file, inodeTableStart, directoryTableStart, compressor);
    return table && tableBytes(table, inodes, blockSize);
  } catch {
    return undefined;
  } finally {
    file.close();
  }
}
