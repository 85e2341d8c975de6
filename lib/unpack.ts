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
  const child = new Deno.Command("unsquashfs", {
    args: ["-no-progress", "-quiet", "-no-xattrs", "-dest", dest, image],
    // Deno refuses to spawn with LD_* in the environment, and a clean one is right anyway.
    clearEnv: true,
    env: ENV,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    ...asOwner,
  });
  let result: Deno.CommandOutput;
  try {
    result = await child.output();
  } catch (error) {
    throw new CacheError(`cannot run unsquashfs: ${(error as Error).message}`);
  }
  if (result.success) return;
  const lines = new TextDecoder().decode(result.stderr).split("\n").map((l) => l.trim()).filter(Boolean);
  if (lines.some((l) => /No space left on device/i.test(l))) {
    throw new NoSpaceError(`no space left in ${dest.replace(/\/[^/]*\/[^/]*$/, "")} to unpack ${image}`);
  }
  const why = lines.find((l) => !/^(Parallel unsquashfs|\d+ inodes|created |FATAL ERROR: failed)/.test(l)) ??
    lines.at(-1) ?? `exit status ${result.code}`;
  throw new CacheError(`unsquashfs failed on ${image}: ${why}`);
}

/** Disk space a tree takes (allocated blocks), measured once when an entry is created. */
export function treeBytes(dir: string): number {
  let bytes = Deno.lstatSync(dir).blocks! * 512;
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    bytes += entry.isDirectory ? treeBytes(path) : Deno.lstatSync(path).blocks! * 512;
  }
  return bytes;
}
