import { CacheError } from "./errors.ts";
import { isRoot, type Owner } from "./users.ts";

/** The unpack ran out of space; the caller may collect and try again. */
export class NoSpaceError extends CacheError {
  override name = "NoSpaceError";
}

const ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };

/**
 * Unpacks `image` into `dest` (which must not exist) with unsquashfs, as
 * `owner` when we are root, so that every unpacked file belongs to the job user.
 */
export async function unsquash(image: string, dest: string, owner: Owner): Promise<void> {
  const asOwner = isRoot() && owner.uid !== 0 ? { uid: owner.uid, gid: owner.gid } : {};
  await runUnsquashfs(image, dest, asOwner);
  // As root, unsquashfs keeps setuid/setgid bits and makes device nodes; as anyone else
  // it cannot. Root unpacks only for uid 0, into the root-owned <base>/0: safe by path.
  if (isRoot() && owner.uid === 0) await dropPrivileged(image, dest);
}

/** A device node a non-root unsquashfs could not make: left out, not an error. */
const DEVICE_NOT_MADE = /could not create (character|block) device .*not superuser/;
/** What unsquashfs prints besides errors. */
const CHATTER = /^(Parallel unsquashfs|\d+ inodes|created |FATAL ERROR: failed)/;

/**
 * unsquashfs is started through `setpriv --pdeathsig KILL`: the kernel kills it when the
 * thread that spawned it dies, so a killed `reuse` leaves no unsquashfs filling the disk,
 * however fast the machine and whatever the image. Order matters: the kernel clears the
 * parent-death signal when a process's credentials change, so the switch to the job user
 * (Deno's uid/gid, before exec) comes first and setpriv sets the signal after it.
 */
const UNSQUASHFS = ["setpriv", "--pdeathsig", "KILL", "--", "unsquashfs"];

async function runUnsquashfs(image: string, dest: string, asOwner: { uid?: number; gid?: number }): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(UNSQUASHFS[0]!, {
      // Not -quiet or -no-progress: measured ~100 ms slower on a 400 MB image.
      args: [...UNSQUASHFS.slice(1), "-no-xattrs", "-dest", dest, image],
      // Deno refuses to spawn with LD_* in the environment, and a clean one is right anyway.
      clearEnv: true,
      env: ENV,
      stdin: "null",
      // Its progress bar goes into a pipe we drain and discard.
      stdout: "piped",
      stderr: "piped",
      ...asOwner,
    }).spawn();
  } catch (error) {
    throw new CacheError(`cannot run ${UNSQUASHFS.join(" ")}: ${(error as Error).message}`);
  }
  const [result, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).arrayBuffer(),
    child.stdout.pipeTo(new WritableStream()),
  ]);
  if (result.success) return;
  const lines = new TextDecoder().decode(stderr).split("\n").map((l) => l.trim()).filter(Boolean);
  // Exit status 2: only non-fatal errors. Device nodes do not belong in a user's rootfs anyway.
  const errors = lines.filter((l) => !CHATTER.test(l));
  if (result.code === 2 && errors.length > 0 && errors.every((l) => DEVICE_NOT_MADE.test(l))) return;
  if (lines.some((l) => /No space left on device/i.test(l))) {
    throw new NoSpaceError(`no space left in ${dest.replace(/\/[^/]*\/[^/]*$/, "")} to unpack ${image}`);
  }
  const why = errors.find((l) => !DEVICE_NOT_MADE.test(l)) ?? lines.at(-1) ?? `exit status ${result.code}`;
  throw new CacheError(`unsquashfs failed on ${image}: ${why}`);
}

/**
 * Calls `visit` with the lstat of everything under `dir`, never following a symlink.
 * Returns how many names could not be looked at: Deno reads file names as UTF-8, so
 * a name with other bytes comes back mangled and cannot be opened by path.
 */
function walk(dir: string, visit: (path: string, info: Deno.FileInfo) => void): number {
  let unreadable = 0;
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      unreadable++;
      continue;
    }
    visit(path, info);
    if (info.isDirectory) unreadable += walk(path, visit);
  }
  return unreadable;
}

/** Disk space a tree takes (allocated blocks), measured once when an entry is created. */
export function treeBytes(dir: string): number {
  let bytes = Deno.lstatSync(dir).blocks! * 512;
  walk(dir, (_, info) => bytes += info.blocks! * 512);
  return bytes;
}

/**
 * Removes device nodes and setuid/setgid bits from a tree root unpacked: a rootfs in
 * the cache runs unprivileged, and root's copy of an image must not hand anyone a
 * setuid-root binary or a raw disk. Only for trees nobody else can write.
 */
async function dropPrivileged(image: string, dir: string): Promise<void> {
  const devices: string[] = [];
  const privileged: [string, number][] = [];
  const top = Deno.lstatSync(dir);
  if (top.mode! & 0o6000) privileged.push([dir, top.mode!]);
  const unreadable = walk(dir, (path, info) => {
    if (info.isBlockDevice || info.isCharDevice) devices.push(path);
    else if (!info.isSymlink && info.mode! & 0o6000) privileged.push([path, info.mode!]);
  });
  for (const path of devices) await Deno.remove(path);
  for (const [path, mode] of privileged) await Deno.chmod(path, mode & 0o1777);
  if (unreadable > 0 && await listsPrivileged(image)) {
    throw new CacheError(
      `${image}: has setuid/setgid files or device nodes, and file names that are not UTF-8: cannot make it safe`,
    );
  }
}

/** Whether the image's listing shows a device node or a setuid/setgid file. */
async function listsPrivileged(image: string): Promise<boolean> {
  const listing = await new Deno.Command("unsquashfs", {
    args: ["-no-progress", "-lls", image],
    clearEnv: true,
    env: ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(listing.stdout);
  return !listing.success || /^([bc]|[-dlps].{2}[sS]|[-dlps].{5}[sS])/m.test(text);
}
