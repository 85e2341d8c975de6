/** Fixtures the tests build themselves: real squashfs images, cache roots, CLI runs. */

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const CLI = `${ROOT}/bin/pyxis-cache`;
export const IS_ROOT = Deno.uid() === 0;
/** An unprivileged account for the cases that need one (the CI runs as root). */
export const NOBODY = { uid: 65534, gid: 65534 };

export async function run(cmd: string, args: string[], options: Deno.CommandOptions = {}) {
  const out = await new Deno.Command(cmd, { args, stdin: "null", ...options }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** A temporary directory the unprivileged test user can traverse, removed by `using`. */
export async function tempDir(prefix = "pyxis-cache-test-"): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  await Deno.chmod(path, 0o755);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await run("umount", ["-l", `${path}/fs`], { stderr: "null" }).catch(() => {});
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Packs a tree of `files` (path → content, or a byte count of random data)
 * into a squashfs image at `image` with mksquashfs.
 */
export async function makeImage(image: string, files: Record<string, string | number>): Promise<void> {
  const tree = `${image}.tree`;
  for (const [path, content] of Object.entries(files)) {
    const full = `${tree}/${path}`;
    await Deno.mkdir(full.replace(/\/[^/]*$/, ""), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(full, content);
    else await Deno.writeFile(full, randomBytes(content));
  }
  const made = await run("mksquashfs", [tree, image, "-noappend", "-quiet", "-no-progress", "-all-root"]);
  if (made.code !== 0) throw new Error(`mksquashfs: ${made.stderr}`);
  await Deno.chmod(image, 0o644);
  await Deno.remove(tree, { recursive: true });
}

function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(n, at + 65536)));
  return bytes;
}

/** The `--set` arguments for a cache rooted at `base`, with extra keys. */
export function settings(base: string, extra: Record<string, string | number> = {}): string[] {
  const keys = { container_cache_data_path: base, ...extra };
  return ["--no-plugstack", ...Object.entries(keys).flatMap(([k, v]) => ["--set", `${k}=${v}`])];
}

/** Runs the real command, as the unprivileged test user when `as` is given, with `env` added. */
export function cli(
  args: string[],
  options: { cwd?: string; as?: { uid: number; gid: number }; env?: Record<string, string> } = {},
) {
  const env: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin", ...options.env };
  if (options.as) env.DENO_DIR = `${Deno.env.get("TMPDIR") ?? "/tmp"}/pyxis-cache-test-deno-${options.as.uid}`;
  return run(CLI, args, { cwd: options.cwd, clearEnv: true, env, ...(options.as ?? {}) });
}

/** Names in a directory, sorted: what a failed command must leave as it found. */
export async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names.sort();
}

/** Every path and file content under `dir`, to compare an entry with its image. */
export async function manifest(dir: string, skip: (name: string) => boolean = () => false): Promise<string[]> {
  const lines: string[] = [];
  async function walk(path: string, rel: string) {
    for await (const entry of Deno.readDir(path)) {
      if (rel === "" && skip(entry.name)) continue;
      const full = `${path}/${entry.name}`;
      const name = `${rel}/${entry.name}`;
      if (entry.isDirectory) {
        lines.push(`${name}/`);
        await walk(full, name);
      } else if (entry.isSymlink) {
        lines.push(`${name} -> ${await Deno.readLink(full)}`);
      } else {
        const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(full));
        lines.push(`${name} ${btoa(String.fromCharCode(...new Uint8Array(digest)))}`);
      }
    }
  }
  await walk(dir, "");
  return lines.sort();
}
