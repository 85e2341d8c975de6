/**
 * The few system calls Deno cannot express: for root in directories users can
 * write, openat(2) with O_NOFOLLOW|O_NONBLOCK|O_DIRECTORY, flock(2) on such a
 * descriptor, renameat/unlinkat relative to directory descriptors, getdents64(2)
 * that returns a name's bytes, statx(2); for anyone, statfs(2) (node:fs has it,
 * but takes ~70 ms to load). Through Deno.dlopen of the C library alone (the
 * launcher grants --allow-ffi for that one file); loaded on first use, so the
 * warm path never pays for it. See docs/operations.md.
 */

const ARCH = Deno.build.arch;
/** Where the C library is, per architecture: Debian's multiarch path, else RHEL's. */
export const LIBC_PATHS = [`/lib/${ARCH}-linux-gnu/libc.so.6`, "/lib64/libc.so.6", "/usr/lib64/libc.so.6"];

const SYMBOLS = {
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // A waiting flock(2), on a thread of Deno's: the process goes on meanwhile.
  flockWait: { name: "flock", parameters: ["i32", "i32"], result: "i32", nonblocking: true },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  renameat: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  statfs: { parameters: ["buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  // Reads errno through its address: Deno's pointer views need --allow-ffi for every library.
  memcpy: { parameters: ["buffer", "pointer", "usize"], result: "pointer" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: Lib | undefined;
let errnoAddress: Deno.PointerValue = null;
const errnoValue = new Int32Array(1);
const errnoBytes = new Uint8Array(errnoValue.buffer);

function libc(): Lib {
  if (lib) return lib;
  let last: unknown;
  for (const path of LIBC_PATHS) {
    try {
      lib = Deno.dlopen(path, SYMBOLS).symbols;
      errnoAddress = lib.__errno_location();
      return lib;
    } catch (error) {
      last = error;
    }
  }
  throw new Error(`cannot load the C library (${LIBC_PATHS.join(", ")}): ${(last as Error)?.message}`);
}

/** Flags and constants; O_DIRECTORY and O_NOFOLLOW differ between x86_64 and aarch64. */
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const O_DIRECTORY = ARCH === "aarch64" ? 0o40000 : 0o200000;
export const O_NOFOLLOW = ARCH === "aarch64" ? 0o100000 : 0o400000;
export const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_EMPTY_PATH = 0x1000;
const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4;

const ERRNO: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  6: "ENXIO",
  11: "EWOULDBLOCK",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  20: "ENOTDIR",
  21: "EISDIR",
  24: "EMFILE",
  28: "ENOSPC",
  30: "EROFS",
  39: "ENOTEMPTY",
  40: "ELOOP",
};

/** A failed call, with its errno's name as `code`. */
export class OsError extends Error {
  override name = "OsError";
  constructor(readonly call: string, readonly errno: number, what: string) {
    const code = ERRNO[errno] ?? `errno ${errno}`;
    super(`${call} ${what}: ${code}`);
    this.code = code;
  }
  readonly code: string;
}

function errno(): number {
  lib!.memcpy(errnoBytes, errnoAddress, 4n);
  return errnoValue[0]!;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A name as C wants it: its bytes, then NUL. */
export type Name = string | Uint8Array;
function cstr(name: Name): Uint8Array {
  // Names from listDir come with their NUL already.
  if (typeof name !== "string" && name.at(-1) === 0) return name;
  const bytes = typeof name === "string" ? encoder.encode(name) : name;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** A name found on disk, shown whatever bytes it holds. */
export function nameText(name: Name): string {
  if (typeof name === "string") return name;
  return decoder.decode(name.at(-1) === 0 ? name.subarray(0, -1) : name);
}

function check(result: number | bigint, call: string, what: Name): number {
  if (Number(result) < 0) throw new OsError(call, errno(), nameText(what));
  return Number(result);
}

/** openat(2); a descriptor, closed by close(). */
export function openAt(dir: number, name: Name, flags: number, mode = 0): number {
  const l = libc();
  for (;;) {
    const fd = l.openat(dir, cstr(name), flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    if (errno() !== 4) return check(fd, "open", name);
  }
}

export function close(fd: number): void {
  libc().close(fd);
}

export interface Stat {
  mode: number;
  uid: number;
  gid: number;
  ino: bigint;
  dev: number;
  size: number;
  blocks: number;
  mtime: Date;
  /** When the inode last changed (nobody can set it back, as one can an mtime). */
  ctime: Date;
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
  isDevice: boolean;
}

/** st_dev as glibc's makedev(3) encodes it, as Deno.FileInfo.dev has it. */
function makedev(major: number, minor: number): number {
  const M = BigInt(major), m = BigInt(minor);
  return Number(((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn));
}

const statBuffer = new Uint8Array(256);
const statView = new DataView(statBuffer.buffer);
const EMPTY = cstr("");

/** statx(2) of a descriptor, or of `name` relative to it (never following a symlink). */
export function stat(fd: number, name?: Name): Stat {
  const l = libc();
  const flags = name === undefined ? AT_EMPTY_PATH : AT_SYMLINK_NOFOLLOW;
  check(l.statx(fd, name === undefined ? EMPTY : cstr(name), flags, 0x7ff, statBuffer), "stat", name ?? `fd ${fd}`);
  const v = statView;
  const mode = v.getUint16(28, true);
  const type = mode & 0o170000;
  return {
    mode,
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    ino: v.getBigUint64(32, true),
    dev: makedev(v.getUint32(136, true), v.getUint32(140, true)),
    size: Number(v.getBigUint64(40, true)),
    blocks: Number(v.getBigUint64(48, true)),
    mtime: new Date(Number(v.getBigInt64(112, true)) * 1000 + Math.floor(v.getUint32(120, true) / 1e6)),
    ctime: new Date(Number(v.getBigInt64(96, true)) * 1000 + Math.floor(v.getUint32(104, true) / 1e6)),
    isFile: type === 0o100000,
    isDirectory: type === 0o040000,
    isSymlink: type === 0o120000,
    isDevice: type === 0o020000 || type === 0o060000,
  };
}

/** statfs(2)'s block counts: struct statfs of 64-bit Linux, whose fields are 8 bytes each. */
export interface FsBlocks {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
}

export function statfs(path: string): FsBlocks {
  const fields = new BigUint64Array(15);
  check(libc().statfs(cstr(path), new Uint8Array(fields.buffer)), "statfs", path);
  return { bsize: Number(fields[1]), blocks: Number(fields[2]), bfree: Number(fields[3]), bavail: Number(fields[4]) };
}

/** Reads up to buffer.length bytes. */
export function read(fd: number, buffer: Uint8Array<ArrayBuffer>): number {
  return check(libc().read(fd, buffer, BigInt(buffer.length)), "read", `fd ${fd}`);
}

/** Writes all of buffer (a short record: one write(2) in practice). */
export function writeAll(fd: number, buffer: Uint8Array<ArrayBuffer>): void {
  for (let at = 0; at < buffer.length;) {
    at += check(libc().write(fd, buffer.subarray(at), BigInt(buffer.length - at)), "write", `fd ${fd}`);
  }
}

/** ftruncate(2) to nothing. */
export function truncate(fd: number): void {
  check(libc().ftruncate(fd, 0n), "ftruncate", `fd ${fd}`);
}

/** flock(2) without waiting: false when someone else holds a conflicting lock. */
export function tryFlock(fd: number, exclusive: boolean): boolean {
  const l = libc();
  for (;;) {
    if (l.flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true;
    const e = errno();
    if (e === 11) return false;
    if (e !== 4) throw new OsError("flock", e, `fd ${fd}`);
  }
}

/** flock(2) exclusive, waiting for it. */
export async function flockExclusive(fd: number): Promise<void> {
  // errno belongs to the thread that made the call: only success can be told apart.
  if (await libc().flockWait(fd, LOCK_EX) !== 0) throw new Error(`flock of fd ${fd} failed`);
}

export function renameAt(fromDir: number, from: Name, toDir: number, to: Name): void {
  check(libc().renameat(fromDir, cstr(from), toDir, cstr(to)), "rename", from);
}

/** unlinkat(2): a directory (empty) with `directory`, anything else without. */
export function unlinkAt(dir: number, name: Name, directory = false): void {
  check(libc().unlinkat(dir, cstr(name), directory ? AT_REMOVEDIR : 0), "remove", name);
}

/** chmod of `name` relative to `dir` (fchmodat cannot refuse a symlink: check the type first). */
export function chmodAt(dir: number, name: Name, mode: number): void {
  check(libc().fchmodat(dir, cstr(name), mode, 0), "chmod", name);
}

export function fchmod(fd: number, mode: number): void {
  check(libc().fchmod(fd, mode), "chmod", `fd ${fd}`);
}

/** Sets a descriptor's access and modification times to now. */
export function touchNow(fd: number): void {
  check(libc().futimens(fd, null), "utime", `fd ${fd}`);
}

const direntBuffer = new Uint8Array(64 * 1024);
const direntView = new DataView(direntBuffer.buffer);

/** A name found in a directory: its bytes with their NUL, and whether it is a directory (when known). */
export interface DirEntry {
  name: Uint8Array;
  /** From d_type; `undefined` when the filesystem does not say. */
  isDirectory?: boolean;
}

/**
 * The names in a directory (not `.` or `..`), as bytes, read from its start; `between`
 * is called before each read of the directory (a caller's bound on a huge one).
 */
export function listDir(fd: number, between?: () => void): DirEntry[] {
  const l = libc();
  check(l.lseek(fd, 0n, 0), "seek", `fd ${fd}`);
  const entries: DirEntry[] = [];
  for (;;) {
    between?.();
    const n = check(l.getdents64(fd, direntBuffer, BigInt(direntBuffer.length)), "readdir", `fd ${fd}`);
    if (n === 0) return entries;
    // struct linux_dirent64: d_ino, d_off (8 bytes each), d_reclen (2), d_type (1), d_name (NUL-terminated).
    for (let at = 0; at < n;) {
      const reclen = direntView.getUint16(at + 16, true);
      const type = direntBuffer[at + 18];
      const end = direntBuffer.indexOf(0, at + 19);
      const name = direntBuffer.slice(at + 19, end + 1);
      at += reclen;
      if (name[0] === 0x2e && (name[1] === 0 || (name[1] === 0x2e && name[2] === 0))) continue;
      entries.push({ name, isDirectory: type === 0 ? undefined : type === 4 });
    }
  }
}
