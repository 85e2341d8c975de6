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

/** Runs the real command, as the unprivileged test user when `as` is given. */
export function cli(args: string[], options: { cwd?: string; as?: { uid: number; gid: number } } = {}) {
  const env: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin" };
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

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An image of directories of empty files, grown until a plain unsquashfs of it takes at
 * least `seconds` on this machine: work sized to the machine, not guessed. Its sources are
 * one directory given again and again (mksquashfs renames them d, d_1, d_2, ...), so the
 * image stays small while unsquashfs creates every file. Up to 400 directories, then
 * more files in each.
 */
export async function slowImage(image: string, seconds: number): Promise<{ copies: number; took: number }> {
  const source = `${image}.tree/d`;
  await Deno.mkdir(source, { recursive: true });
  let copies = 40, files = 0, wanted = 500;
  for (;;) {
    for (; files < wanted; files++) Deno.writeFileSync(`${source}/${files}`, new Uint8Array());
    const made = await run("mksquashfs", [
      ...Array(copies).fill(source),
      image,
      "-noappend",
      "-no-progress",
      "-all-root",
    ]);
    if (made.code !== 0) throw new Error(`mksquashfs: ${made.stderr}`);
    await Deno.chmod(image, 0o644);
    const probe = `${image}.probe`;
    const started = performance.now();
    const unpacked = await run("unsquashfs", ["-no-progress", "-quiet", "-d", probe, image]);
    const took = (performance.now() - started) / 1000;
    await Deno.remove(probe, { recursive: true });
    if (unpacked.code !== 0) throw new Error(`unsquashfs: ${unpacked.stderr}`);
    if (took >= seconds || files >= 100_000) {
      await Deno.remove(`${image}.tree`, { recursive: true });
      return { copies, took };
    }
    const total = copies * files * Math.min(10, (1.3 * seconds) / took);
    copies = Math.min(400, Math.ceil(total / files));
    wanted = Math.ceil(total / copies);
  }
}

/** Deno's permissions refuse /proc without --allow-all: ps reads it for us. */
async function ps(args: string[]): Promise<{ pid: number; state: string; args: string[] }[]> {
  const out = await run("ps", [...args, "-o", "pid=,stat=,args="]);
  return out.stdout.split("\n").filter(Boolean).map((line) => {
    const [pid, state, ...rest] = line.trim().split(/\s+/);
    return { pid: Number(pid), state: state!, args: rest };
  });
}

/** The processes whose command line is `argv0 ...` and contains `text`. */
export async function processes(argv0: string, text: string): Promise<number[]> {
  return (await ps(["-e"]))
    .filter((p) => p.args[0]?.split("/").at(-1) === argv0 && p.args.some((a) => a.includes(text)))
    .map((p) => p.pid);
}

/** Whether a process runs: neither gone nor a zombie (a container's init may never reap it). */
export async function isRunning(pid: number): Promise<boolean> {
  const [found] = await ps(["-p", String(pid)]);
  return found !== undefined && !/^[ZX]/.test(found.state);
}
