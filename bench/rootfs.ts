/**
 * A deterministic synthetic rootfs for the benchmarks: the same seed, file
 * count and size always give the same tree, byte for byte.
 *
 *   deno run --allow-write bench/rootfs.ts DEST FILES MEGABYTES [SEED]
 *
 * Shaped like a distribution image: a directory tree a few levels deep
 * (usr/lib/<pkg>/<sub>/...), file sizes drawn from a log-normal (median about
 * 2 KiB before scaling, a long tail of multi-megabyte "libraries"), scaled so that the total
 * is MEGABYTES; one file in 20 is a symlink, one in 8 is executable. Contents
 * are slices of a pseudo-random pool, so they do not compress and squashfs
 * finds no duplicates: the image is about as large as the tree.
 */

/** xorshift128+: small, fast and the same everywhere. */
function prng(seed: number): () => number {
  let s0 = BigInt(seed) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn | 1n;
  let s1 = (s0 ^ 0xbf58476d1ce4e5b9n) * 0x94d049bb133111ebn & 0xffffffffffffffffn | 1n;
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= (x << 23n) & 0xffffffffffffffffn;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number((s1 + y) & 0x1fffffffffffffn) / 2 ** 53;
  };
}

/** A fast 32-bit generator for bulk bytes (xorshift32). */
function fill(buffer: Uint32Array, seed: number): void {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < buffer.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buffer[i] = x >>> 0;
  }
}

const TOP = ["usr/lib", "usr/share", "usr/bin", "usr/include", "opt", "etc", "var/lib", "usr/local/lib"];
const WORDS = [
  "python3",
  "site-packages",
  "cuda",
  "x86_64-linux-gnu",
  "perl5",
  "doc",
  "locale",
  "man",
  "icons",
  "terminfo",
  "gcc",
  "include",
  "node_modules",
  "dist",
  "src",
  "tests",
  "data",
  "plugins",
  "share",
  "lib",
];

export function generate(dest: string, files: number, megabytes: number, seed = 1): void {
  const random = prng(seed);
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;

  // Directories: about one per 12 files, each under a random earlier one, depth up to 9.
  const dirs: { path: string; depth: number }[] = TOP.map((path) => ({ path, depth: path.split("/").length }));
  const dirCount = Math.max(TOP.length, Math.round(files / 12));
  while (dirs.length < dirCount) {
    const parent = dirs[Math.floor(random() ** 1.5 * dirs.length)]!;
    if (parent.depth >= 9) continue;
    dirs.push({ path: `${parent.path}/${pick(WORDS)}${dirs.length}`, depth: parent.depth + 1 });
  }

  // Sizes: log-normal (median 2 KiB, sigma 1.9, at most 64 MiB), then scaled to the total.
  const raw: number[] = [];
  for (let i = 0; i < files; i++) {
    const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    raw.push(Math.min(64 * 2 ** 20, 2048 * Math.exp(1.9 * normal)));
  }
  // One file in 20 becomes a symlink and takes no bytes.
  const scale = (megabytes * 2 ** 20) / (0.95 * raw.reduce((a, b) => a + b, 0));

  const pool = new Uint32Array(16 * 2 ** 20); // 64 MiB of pseudo-random bytes
  fill(pool, seed);
  const bytes = new Uint8Array(pool.buffer);

  for (const { path } of dirs) Deno.mkdirSync(`${dest}/${path}`, { recursive: true });
  const made: string[] = [];
  for (let i = 0; i < files; i++) {
    const dir = pick(dirs).path;
    const path = `${dest}/${dir}/f${i}${pick([".so", ".py", ".h", ".txt", "", ".json", ".mo", ".png"])}`;
    if (made.length > 10 && random() < 0.05) {
      const target = pick(made);
      Deno.symlinkSync(target.slice(dest.length), path);
      continue;
    }
    let size = Math.round(raw[i]! * scale);
    const chunks: Uint8Array[] = [];
    while (size > 0) {
      const n = Math.min(size, bytes.length / 2);
      const offset = Math.floor(random() * (bytes.length - n));
      chunks.push(bytes.subarray(offset, offset + n));
      size -= n;
    }
    const file = Deno.openSync(path, { write: true, create: true, truncate: true });
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.length) done += file.writeSync(chunk.subarray(done));
    }
    file.close();
    Deno.chmodSync(path, random() < 0.125 ? 0o755 : 0o644);
    made.push(path);
  }
}

if (import.meta.main) {
  const [dest, files, megabytes, seed] = Deno.args;
  if (!dest || !files || !megabytes) {
    console.error("usage: rootfs.ts DEST FILES MEGABYTES [SEED]");
    Deno.exit(2);
  }
  generate(dest, Number(files), Number(megabytes), Number(seed ?? 1));
}
