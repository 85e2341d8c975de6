import { isRoot, self } from "./users.ts";
/**
 * Removes a tree without ever following a symlink: Deno.remove uses Rust's
 * remove_dir_all, which walks with openat(O_NOFOLLOW) and unlinks a symlink
 * rather than its target.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    // A user may not empty a read-only directory of their own image until it is
    // writable again. Root needs no such help, and must not chmod user paths.
    if (!(error instanceof Deno.errors.PermissionDenied) || isRoot()) throw error;
    await makeWritable(path);
    await Deno.remove(path, { recursive: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  const info = await Deno.lstat(dir);
  if (!info.isDirectory || info.uid !== self().uid) return;
  await Deno.chmod(dir, 0o700);
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) await makeWritable(`${dir}/${entry.name}`);
  }
}
