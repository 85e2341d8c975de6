/**
 * Puts a new file or directory, owned by the job user, at a path inside a directory of
 * theirs. Root cannot create and then chown safely in a directory the user can write
 * (the path could be swapped for a symlink in between, and chown follows it), so it
 * creates and chowns in a private directory under the root-owned `<base>` and moves the
 * result in with renameat(2) into the destination's directory as root opened it (never
 * through a symlink, and checked to be the user's): swapping names afterwards changes
 * nothing, and rename replaces whatever is at the destination name itself.
 */
import type { Config } from "../config/config.ts";
import { CacheError } from "../os/errors.ts";
import { openPath } from "../os/files.ts";
import { randomSuffix, STAGING_PREFIX } from "../layout.ts";
import { isRoot, type Owner } from "../os/users.ts";

/** A file's text, or `null` for an empty directory. */
export type Content = string | null;

async function create(path: string, content: Content): Promise<void> {
  if (content === null) await Deno.mkdir(path, { mode: 0o700 });
  // O_EXCL: never written through a planted symlink.
  else await Deno.writeTextFile(path, content, { createNew: true, mode: 0o644 });
}

export async function placeAsOwner(config: Config, dest: string, content: Content, owner: Owner): Promise<void> {
  if (!isRoot() && content === null) return await create(dest, content);
  if (!isRoot()) {
    const temp = `${dest}.${randomSuffix()}.new`;
    await create(temp, content);
    try {
      await Deno.rename(temp, dest);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
    return;
  }
  const slash = dest.lastIndexOf("/");
  const into = openPath(dest.slice(0, slash), "directory");
  if (typeof into === "string" || into.info.uid !== owner.uid) {
    if (typeof into !== "string") into.close();
    throw new CacheError(`${dest.slice(0, slash)} is no longer a directory of uid ${owner.uid}`);
  }
  const staging = await Deno.makeTempDir({ dir: config.dataPath, prefix: STAGING_PREFIX });
  try {
    await create(`${staging}/item`, content);
    await Deno.chown(`${staging}/item`, owner.uid, owner.gid);
    const { AT_FDCWD, renameAt } = await import("../os/libc.ts");
    renameAt(AT_FDCWD, `${staging}/item`, into.fd, dest.slice(slash + 1));
  } finally {
    into.close();
    await Deno.remove(staging, { recursive: true });
  }
}
