/**
 * Puts a new file or directory, owned by the job user, at a path inside the user's
 * directory. Root cannot create and then chown safely in a directory the user can
 * write (the path could be swapped for a symlink in between, and chown follows it),
 * so it creates and chowns in a private directory under the root-owned `<base>` and
 * moves the result in with rename(2), which replaces whatever is at `dest` itself.
 */
import type { Config } from "./config.ts";
import { STAGING_PREFIX, suffix } from "./layout.ts";
import { isRoot, type Owner } from "./users.ts";

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
    const temp = `${dest}.${suffix()}.new`;
    await create(temp, content);
    try {
      await Deno.rename(temp, dest);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
    return;
  }
  const staging = await Deno.makeTempDir({ dir: config.dataPath, prefix: STAGING_PREFIX });
  try {
    await create(`${staging}/item`, content);
    await Deno.chown(`${staging}/item`, owner.uid, owner.gid);
    await Deno.rename(`${staging}/item`, dest);
  } finally {
    await Deno.remove(staging, { recursive: true });
  }
}
