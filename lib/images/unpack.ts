import { CacheError, describe, NoSpaceError } from "../os/errors.ts";
import { walkTree } from "../os/files.ts";
import { SAFE_PATH } from "../layout.ts";
import { chmodAt, unlinkAt } from "../os/libc.ts";
import { noSpace, runAsOwner } from "../os/spawn.ts";
import { isRoot, type Owner } from "../os/users.ts";

const ENV = { PATH: SAFE_PATH, LC_ALL: "C" };

/**
 * Unpacks `image` into `dest` (which must not exist) with unsquashfs, as
 * `owner` when we are root, so that every unpacked file belongs to the job user.
 */
export async function unsquash(image: string, dest: string, owner: Owner): Promise<void> {
  await runUnsquashfs(image, dest, owner);
  // As root, unsquashfs keeps setuid/setgid bits and makes device nodes; as anyone else
  // it cannot. Root unpacks only for uid 0, into the root-owned <base>/0: safe by path.
  if (isRoot() && owner.uid === 0) dropPrivileged(image, dest);
}

/** A device node a non-root unsquashfs could not make: left out, not an error. */
const DEVICE_NOT_MADE = /could not create (character|block) device .*not superuser/;
/** What unsquashfs prints besides errors. */
const CHATTER = /^(Parallel unsquashfs|\d+ inodes|created |FATAL ERROR: failed)/;

async function runUnsquashfs(image: string, dest: string, owner: Owner): Promise<void> {
  // Not -quiet or -no-progress: measured ~100 ms slower on a 400 MB image (the progress bar is drained).
  const result = await runAsOwner(["unsquashfs", "-no-xattrs", "-dest", dest, image], { env: ENV }, owner);
  if (result.success) return;
  const lines = result.stderrLines;
  // Exit status 2: only non-fatal errors. Device nodes do not belong in a user's rootfs anyway.
  const errors = lines.filter((l) => !CHATTER.test(l));
  if (result.code === 2 && errors.length > 0 && errors.every((l) => DEVICE_NOT_MADE.test(l))) return;
  if (noSpace(lines)) {
    throw new NoSpaceError(`no space left in ${dest.replace(/\/[^/]*\/[^/]*$/, "")} to unpack ${image}`);
  }
  const why = errors.find((l) => !DEVICE_NOT_MADE.test(l)) ?? lines.at(-1) ?? `exit status ${result.code}`;
  throw new CacheError(`unsquashfs failed on ${image}: ${why}`);
}

/** Disk space a tree takes (allocated blocks), measured once when an entry is created. */
export function treeBytes(dir: string): number {
  let bytes = Deno.lstatSync(dir).blocks! * 512;
  walkTree(dir, (_dir, _name, info) => bytes += info.blocks * 512);
  return bytes;
}

/**
 * Removes device nodes and setuid/setgid bits from a tree root unpacked: a rootfs in
 * the cache runs unprivileged, and root's copy of an image must not hand anyone a
 * setuid-root binary or a raw disk. Only for trees nobody else can write. Names are
 * looked at as the bytes they are on disk, so one that is not UTF-8 is not missed
 * (nor mistaken for a decoy that reads the same once decoded).
 */
function dropPrivileged(image: string, dir: string): void {
  const top = Deno.lstatSync(dir);
  if (top.mode! & 0o6000) Deno.chmodSync(dir, top.mode! & 0o1777);
  try {
    walkTree(dir, (parent, name, info) => {
      if (info.isDevice) unlinkAt(parent, name);
      else if (!info.isSymlink && info.mode & 0o6000) chmodAt(parent, name, info.mode & 0o1777);
    });
  } catch (error) {
    throw new CacheError(`${image}: cannot drop setuid/setgid bits and device nodes: ${describe(error)}`);
  }
}
