/**
 * pyxis-cache benchmarks: each figure is a ratio of two commands measured
 * side by side in the same run (A and B alternate, several repetitions), so
 * that the machine's mood affects both alike. Run through bench/run.sh.
 *
 * Wall time is measured around the spawned command; peak RSS comes from
 * /usr/bin/time -f %M, which wraps A and B alike.
 */
import { generate } from "./rootfs.ts";
import { enrootDir, startRegistry } from "../tests/registry.ts";

const QUICK = Deno.env.get("BENCH_QUICK") === "1";
const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const WORK = Deno.env.get("BENCH_DIR") ?? "/var/tmp/pyxis-cache-bench";
/** Where the cache roots and plain unpacks go: a private tmpfs from run.sh unless BENCH_FS=disk. */
const FS = Deno.env.get("BENCH_FS_DIR") ?? WORK;
const CLI = `${REPO}/bin/pyxis-cache`;
const DENO = Deno.execPath();
const FILES = QUICK ? 5_000 : 50_000;
const MEGABYTES = QUICK ? 40 : 400;
const REPS = Number(Deno.env.get("BENCH_REPS") ?? (QUICK ? 3 : 5));
const FAST_REPS = REPS * 4;
const ONLY = Deno.env.get("BENCH_ONLY")?.split(",");

interface Run {
  ms: number;
  rssKiB: number;
  stdout: string;
}

interface Row {
  id: string;
  what: string;
  a: Run[];
  b: Run[];
  target: string;
  /** Whether the target is met, from the medians; a string says why not measured. */
  met: boolean | string;
  note?: string;
  /** Show A and B as absolute figures rather than a ratio. */
  absolute?: boolean;
}

const rows: Row[] = [];

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function sh(cmd: string[], options: { quiet?: boolean } = {}): Promise<string> {
  const out = await new Deno.Command(cmd[0]!, { args: cmd.slice(1), stdin: "null", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success && !options.quiet) {
    throw new Error(`${cmd.join(" ")}: exit ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

let runCounter = 0;

/**
 * The job user: in production the SPANK stub runs `reuse` as the user (unsquashfs
 * too), with HOME theirs (Deno's cache lives there). nobody, with a home of its own.
 */
const USER = { uid: 65534, gid: 65534 };
const USER_HOME = `${WORK}/home-${USER.uid}`;
const RSS_DIR = `${WORK}/rss`;

/**
 * Runs `cmd` once under /usr/bin/time: wall time (ms), peak RSS (KiB), stdout. As the job user unless `root`,
 * with `env` added to the environment.
 */
async function measure(cmd: string[], options: { root?: boolean; env?: Record<string, string> } = {}): Promise<Run> {
  const rssFile = `${RSS_DIR}/${Deno.pid}.${runCounter++}`;
  const asUser = options.root ? { env: options.env } : { ...USER, env: { HOME: USER_HOME, ...options.env } };
  const started = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "%M", "-o", rssFile, ...cmd],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...asUser,
  }).output();
  const ms = performance.now() - started;
  const rssKiB = Number(Deno.readTextFileSync(rssFile).trim().split("\n").at(-1));
  Deno.removeSync(rssFile);
  if (!out.success) {
    throw new Error(`${cmd.join(" ")}: exit ${out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return { ms, rssKiB, stdout: new TextDecoder().decode(out.stdout) };
}

/** Several commands at once: wall time until the last ends, the largest peak RSS. */
async function measureTogether(cmds: string[][]): Promise<Run & { runs: Run[] }> {
  const started = performance.now();
  const runs = await Promise.all(cmds.map((cmd) => measure(cmd)));
  const ms = performance.now() - started;
  return { ms, rssKiB: Math.max(...runs.map((r) => r.rssKiB)), stdout: runs.map((r) => r.stdout).join(""), runs };
}

/** A and B alternately, `reps` times each (after `warmup` unmeasured pairs); setups are not timed. */
async function sideBySide(
  reps: number,
  a: { setup?: () => Promise<void>; run: () => Promise<Run>; after?: () => Promise<void> },
  b: { setup?: () => Promise<void>; run: () => Promise<Run>; after?: () => Promise<void> },
  warmup = 1,
): Promise<{ a: Run[]; b: Run[] }> {
  const result = { a: [] as Run[], b: [] as Run[] };
  for (let i = 0; i < warmup + reps; i++) {
    // Alternate which one goes first, so neither always follows the other.
    const order = i % 2 ? [["b", b], ["a", a]] as const : [["a", a], ["b", b]] as const;
    for (const [key, side] of order) {
      await side.setup?.();
      const run = await side.run();
      await side.after?.();
      if (i >= warmup) result[key].push(run);
    }
  }
  return result;
}

/** `<base>/<uid>` for the job user, made by root as the stub does. */
async function prepareUser(base: string): Promise<void> {
  await measure([CLI, "prepare", "--uid", String(USER.uid), "--gid", String(USER.gid), ...config(base)], {
    root: true,
  });
}

/** A directory the job user may unpack into, on the same filesystem as the cache roots. */
async function userScratch(): Promise<string> {
  const dir = `${FS}/scratch-${USER.uid}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.chown(dir, USER.uid, USER.gid);
  return dir;
}

function want(id: string): boolean {
  return !ONLY || ONLY.includes(id);
}

function config(base: string): string[] {
  return ["--no-plugstack", "--set", `container_cache_data_path=${base}`];
}

async function dropWriteback(): Promise<void> {
  await sh(["sync"]);
}

// ---------------------------------------------------------------- the image

async function sha(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest).subarray(0, 6), (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The test image, built once per generator version and size, then reused by later runs. */
async function testImage(): Promise<string> {
  const version = await sha(`${REPO}/bench/rootfs.ts`);
  const image = `${WORK}/images/rootfs-${FILES}f-${MEGABYTES}m-s1-bb-${version}.sqfs`;
  if (await Deno.lstat(image).then(() => true, () => false)) return image;
  await Deno.mkdir(`${WORK}/images`, { recursive: true });
  const tree = `${WORK}/images/tree.${Deno.pid}`;
  console.error(`bench: building ${image} (${FILES} files, ${MEGABYTES} MB; cached for later runs)`);
  generate(tree, FILES, MEGABYTES, 1);
  // The host's static busybox, so that srun can run `true` in it (P6).
  await Deno.mkdir(`${tree}/bin`, { recursive: true });
  await Deno.copyFile("/bin/busybox", `${tree}/bin/busybox`);
  for (const app of ["true", "sh"]) await Deno.symlink("busybox", `${tree}/bin/${app}`);
  await Deno.mkdir(`${tree}/tmp`);
  await sh([
    "mksquashfs",
    tree,
    `${image}.tmp`,
    "-noappend",
    "-no-progress",
    "-quiet",
    "-all-root",
    "-mkfs-time",
    "0",
    "-all-time",
    "0",
  ]);
  await Deno.remove(tree, { recursive: true });
  await Deno.rename(`${image}.tmp`, image);
  return image;
}

// ---------------------------------------------------------------- the figures

async function p1(image: string): Promise<void> {
  const base = `${FS}/p1`;
  const empty = `${WORK}/empty.ts`;
  Deno.writeTextFileSync(empty, "");
  await prepareUser(base);
  await measure([CLI, "reuse", "--image", image, ...config(base)]); // the entry exists from now on
  const reuse = [CLI, "reuse", "--image", image, ...config(base)];
  const bare = [DENO, "run", "--quiet", "--no-prompt", "--no-config", "--no-lock", empty];
  const { a, b } = await sideBySide(FAST_REPS, { run: () => measure(reuse) }, { run: () => measure(bare) }, 2);
  const ratio = median(a.map((r) => r.ms)) / median(b.map((r) => r.ms));
  rows.push({
    id: "P1",
    what: "warm `reuse` / bare `deno run` of an empty script",
    a,
    b,
    target: "≤ 1.35×",
    met: ratio <= 1.35,
  });
}

/** The side of a cold figure that runs `cmd` (a `reuse --json` that must create its entry), removed after each run. */
function coldReuse(id: string, cmd: string[], env?: Record<string, string>) {
  let entry = "";
  return {
    setup: dropWriteback,
    run: async () => {
      const run = await measure(cmd, { env });
      const out = JSON.parse(run.stdout);
      if (!out.created) throw new Error(`${id}: reuse did not create the entry`);
      entry = out.path;
      return run;
    },
    after: () => Deno.remove(entry, { recursive: true }),
  };
}

async function p2(image: string): Promise<void> {
  const base = `${FS}/p2`;
  const dest = `${await userScratch()}/p2-plain`;
  await prepareUser(base);
  const { a, b } = await sideBySide(
    REPS,
    coldReuse("P2", [CLI, "reuse", "--json", "--image", image, ...config(base)]),
    {
      setup: dropWriteback,
      run: () => measure(["unsquashfs", "-d", dest, image]),
      after: () => Deno.remove(dest, { recursive: true }),
    },
  );
  const ratio = median(a.map((r) => r.ms)) / median(b.map((r) => r.ms));
  rows.push({
    id: "P2",
    what: `cold \`reuse\` / \`unsquashfs -d\` (${MEGABYTES} MB image)`,
    a,
    b,
    target: "≤ 1.05×",
    met: ratio <= 1.05,
  });
}

async function p3(image: string): Promise<void> {
  const base = `${FS}/p3`;
  await prepareUser(base);
  const cmd = [CLI, "reuse", "--json", "--image", image, ...config(base)];
  let entry = "";
  const created: number[] = [];
  const { a, b } = await sideBySide(REPS, {
    setup: dropWriteback,
    run: async () => {
      const run = await measureTogether(Array.from({ length: 16 }, () => cmd));
      const outs = run.runs.map((r) => JSON.parse(r.stdout));
      created.push(outs.filter((o) => o.created === true).length);
      entry = outs[0].path;
      return run;
    },
    after: () => Deno.remove(entry, { recursive: true }),
  }, {
    setup: dropWriteback,
    run: async () => {
      const run = await measure(cmd);
      entry = JSON.parse(run.stdout).path;
      return run;
    },
    after: () => Deno.remove(entry, { recursive: true }),
  });
  const ratio = median(a.map((r) => r.ms)) / median(b.map((r) => r.ms));
  const once = created.every((n) => n === 1);
  rows.push({
    id: "P3",
    what: "16 concurrent cold `reuse` / one cold `reuse`",
    a,
    b,
    target: "≤ 1.2×, one unpack",
    met: ratio <= 1.2 && once,
    note: `created:true per round: ${created.join(", ")}`,
  });
}

/** 10,000 entries over 100 uids, each with `files` files in it; kept between runs (gc --dry-run changes nothing). */
async function fabricate(files: number): Promise<string> {
  const uids = 100;
  const perUid = 100;
  const base = `${WORK}/p4-${uids * perUid}e-${files}f-v2`; // v2: records in the lock files
  if (await Deno.lstat(`${base}/.complete`).then(() => true, () => false)) return base;
  await Deno.remove(base, { recursive: true }).catch(() => {});
  console.error(`bench: fabricating ${uids * perUid} entries with ${files} files each in ${base}`);
  await Deno.mkdir(base, { mode: 0o755 });
  Deno.writeTextFileSync(`${base}/pyxis-container-cache-gc.lock`, "");
  const day = Date.now() - 86_400_000;
  for (let u = 0; u < uids; u++) {
    const uid = 20_000 + u;
    const dir = `${base}/${uid}`;
    Deno.mkdirSync(dir, { mode: 0o700 });
    for (let e = 0; e < perUid; e++) {
      const hash = (u * perUid + e).toString(16).padStart(20, "0");
      const entry = `${dir}/pyxis_cache_u${uid}_${hash}`;
      Deno.mkdirSync(entry);
      for (let f = 0; f < files; f++) {
        const sub = `${entry}/usr/lib/d${f % 8}`;
        if (f < 8) Deno.mkdirSync(sub, { recursive: true });
        Deno.writeTextFileSync(`${sub}/f${f}`, "x");
      }
      const meta = { image: `/images/img${e}.sqfs`, bytes: 4096 * (files + 3), createdAt: new Date(day).toISOString() };
      Deno.writeTextFileSync(`${entry}/.pyxis_cache_lock`, JSON.stringify({ ...meta, unpackSeconds: 1 }) + "\n");
      const when = new Date(day + ((u * 7919 + e * 104729) % 86_400) * 1000);
      Deno.utimeSync(entry, when, when);
    }
    Deno.chownSync(dir, uid, uid);
  }
  Deno.writeTextFileSync(`${base}/.complete`, "");
  return base;
}

async function p4(): Promise<void> {
  const tiny = await fabricate(0);
  const many = await fabricate(QUICK ? 10 : 40);
  // Watermarks far below the real use: the collector walks and decides on every one of the
  // 10,000 entries (taking each lock), and --dry-run evicts none.
  const gc = (base: string) => [
    CLI,
    "gc",
    "--dry-run",
    "--json",
    ...config(base),
    "--set",
    "container_cache_gc_high=2",
    "--set",
    "container_cache_gc_low=1",
  ];
  const { a, b } = await sideBySide(REPS, { run: () => measure(gc(many), { root: true }) }, {
    run: () => measure(gc(tiny), { root: true }),
  });
  const decided = JSON.parse(a[0]!.stdout).evicted.length;
  const worst = Math.max(...a.map((r) => r.ms), ...b.map((r) => r.ms));
  const rss = Math.max(...a.map((r) => r.rssKiB), ...b.map((r) => r.rssKiB));
  const ratio = median(a.map((r) => r.ms)) / median(b.map((r) => r.ms));
  rows.push({
    id: "P4",
    what: `\`gc --dry-run\` over 10,000 entries / 100 uids: ${
      QUICK ? 10 : 40
    } files per entry (A) vs empty entries (B)`,
    a,
    b,
    target: "≤ 1 s, ≤ 100 MB, A ≈ B",
    met: worst <= 1000 && rss <= 100 * 1024 && ratio <= 1.1,
    note: `would evict ${decided} entries; slowest run ${worst.toFixed(0)} ms, peak RSS ${(rss / 1024).toFixed(0)} MiB`,
  });
}

async function p5(image: string): Promise<void> {
  const base = `${FS}/p5`;
  const plain = `${await userScratch()}/p5-plain`;
  await prepareUser(base);
  const { a, b } = await sideBySide(REPS, {
    setup: async () => {
      await measure([CLI, "reuse", "--image", image, ...config(base)]);
      await dropWriteback();
    },
    run: async () => {
      const run = await measure([CLI, "gc", "--all", "--json", ...config(base)], { root: true });
      if (JSON.parse(run.stdout).evicted.length !== 1) throw new Error("P5: gc did not evict the entry");
      return run;
    },
  }, {
    setup: async () => {
      await measure(["unsquashfs", "-q", "-d", plain, image]);
      await dropWriteback();
    },
    run: () => measure(["rm", "-rf", plain], { root: true }),
  });
  const ratio = median(a.map((r) => r.ms)) / median(b.map((r) => r.ms));
  rows.push({
    id: "P5",
    what: `evict one ${MEGABYTES} MB entry (\`gc --all\`) / \`rm -rf\` of the same tree`,
    a,
    b,
    target: "≤ 1.1×",
    met: ratio <= 1.1,
  });
}

/**
 * Runs a srun harness (bench/srun*.sh), which prints one "<label> <ms>" line per measured
 * run: the runs by label, or why it was skipped.
 */
async function srunHarness(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Map<string, Run[]> | string> {
  const out = await new Deno.Command("bash", {
    args: [`${REPO}/bench/${script}`, ...args],
    env,
    stdin: "null",
    stderr: "inherit",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const skipped = text.split("\n").find((line) => line.startsWith("skipped:"));
  if (!out.success || !text || skipped) return skipped ?? `skipped: bench/${script} failed (exit ${out.code})`;
  const runs = new Map<string, Run[]>();
  for (const line of text.split("\n")) {
    const [label, ms] = line.split(" ");
    if (!label || !ms) continue;
    runs.set(label, [...(runs.get(label) ?? []), { ms: Number(ms), rssKiB: 0, stdout: "" }]);
  }
  return runs;
}

// P6 (bwrap) and P7 (enroot): the same steps through each runtime.
async function p6(image: string, runtime: "bwrap" | "enroot", id: string): Promise<void> {
  const runs = await srunHarness("srun.sh", [image, String(REPS), runtime]);
  if (typeof runs === "string") {
    rows.push({
      id,
      what: `\`srun --container-cache\` warm / plain \`srun true\` (${runtime})`,
      a: [],
      b: [],
      target: "≤ +120 ms",
      met: runs,
    });
    return;
  }
  const warm = runs.get("warm") ?? [];
  const plain = runs.get("plain") ?? [];
  const cold = runs.get("cold") ?? [];
  const overhead = median(warm.map((r) => r.ms)) - median(plain.map((r) => r.ms));
  rows.push({
    id,
    what: `\`srun --container-cache … true\` warm / plain \`srun true\` (${runtime})`,
    a: warm,
    b: plain,
    target: "≤ +120 ms",
    met: overhead <= 120,
    note: `overhead ${overhead.toFixed(0)} ms`,
  });
  const published = runs.get("published") ?? [];
  const unsquashfs = runs.get("unsquashfs") ?? [];
  if (published.length && unsquashfs.length) {
    const ratio = median(published.map((r) => r.ms)) / median(unsquashfs.map((r) => r.ms));
    rows.push({
      id: `${id}p`,
      what: `a cold step's entry published (from the step's start) / plain \`unsquashfs\` (${runtime})`,
      a: published,
      b: unsquashfs,
      target: "≤ 1.2×",
      met: ratio <= 1.2,
    });
  }
  if (cold.length) {
    rows.push({
      id: `${id}c`,
      what: `\`srun --container-cache\` cold / warm (${MEGABYTES} MB image, ${runtime})`,
      a: cold,
      b: warm,
      target: "(figure)",
      met: true,
    });
  }
}

// P10: a cold step that waits for the unpack (container_cache_fuse=no) against a cold
// step from a FUSE mount, each configuration's rounds one after the other.
async function p10(image: string): Promise<void> {
  const what =
    `\`srun --container-cache … true\` cold, waiting for the unpack / from a FUSE mount (${MEGABYTES} MB image)`;
  const mounted = await srunHarness("srun.sh", [image, String(REPS)]);
  const today = await srunHarness("srun.sh", [image, String(REPS)], {
    E2E_PLUGSTACK_EXTRA: "container_cache_fuse=no",
  });
  if (typeof mounted === "string" || typeof today === "string") {
    rows.push({
      id: "P10",
      what,
      a: [],
      b: [],
      target: "(figure)",
      met: [mounted, today].find((r) => typeof r === "string") as string,
    });
    return;
  }
  rows.push({
    id: "P10",
    what,
    a: today.get("cold") ?? [],
    b: mounted.get("cold") ?? [],
    target: "(figure)",
    met: true,
  });
}

// P11 (issue 22): a warm step against the floor, on a 1 MB image of the host's static
// busybox, so that what is measured is the step and not the image. bwrap: warm ≤ plain
// `srun true` + 10 ms. enroot: warm ≤ 0.9× and cold ≤ 1.0× the seed PR's, which is
// measured as what its steps are made of, as the job user in the same rounds: a plain
// `srun true` then `enroot start` of the same entry (warm), with `enroot create` of the
// image between the two (cold). BENCH_PLUGIN_B=SO runs every round again with that build
// of the stub (the "B" rows): two builds side by side in one run.
const P11_REPS = Number(Deno.env.get("BENCH_REPS") ?? (QUICK ? 3 : 11));
const PLUGIN_B = Deno.env.get("BENCH_PLUGIN_B");

/** The phases bench/srun.sh reads from the stub's stamps, in the order of a step. */
const PHASES: [string, string][] = [
  ["before", "slurmstepd until user_init"],
  ["call", "the command's call (waited for in user_init)"],
  ["callwhole", "the command's call, from its start"],
  ["answer", "root's record answers, no call (its child, the lock)"],
  ["lock", "the entry's lock"],
  ["step", "`step` call (enroot)"],
  ["runtime", "the runtime's start"],
  ["other", "rest of user_init"],
  ["join", "tasks joining (user_init's end to the last task_init)"],
  ["exit", "exit (`release` call, enroot)"],
];
const breakdowns: string[] = [];

/** The small image of P11, built once. */
async function smallImage(): Promise<string> {
  const image = `${WORK}/images/busybox-${await sha("/bin/busybox")}.sqfs`;
  if (await Deno.lstat(image).then(() => true, () => false)) return image;
  await Deno.mkdir(`${WORK}/images`, { recursive: true });
  const tree = `${WORK}/images/busybox-tree.${Deno.pid}`;
  await Deno.mkdir(`${tree}/bin`, { recursive: true });
  await Deno.mkdir(`${tree}/tmp`);
  await Deno.copyFile("/bin/busybox", `${tree}/bin/busybox`);
  for (const app of ["true", "sh"]) await Deno.symlink("busybox", `${tree}/bin/${app}`);
  await sh(["mksquashfs", tree, `${image}.tmp`, "-noappend", "-no-progress", "-quiet", "-all-root"]);
  await Deno.remove(tree, { recursive: true });
  await Deno.rename(`${image}.tmp`, image);
  return image;
}

function breakdown(runtime: string, runs: Map<string, Run[]>, suffix: string): void {
  const ms = (label: string) => {
    const values = (runs.get(`${label}${suffix}`) ?? []).map((r) => r.ms);
    return values.length ? median(values).toFixed(1) : "–";
  };
  const build = PLUGIN_B ? (suffix ? " (B)" : " (A)") : "";
  const steps = [["warm", "phase_", "warm"], ["cold", "coldphase_", "cold (evicted)"], [
    "coldfirst",
    "coldfirstphase_",
    "cold (first sight)",
  ]];
  for (const [step, prefix, shown] of steps) {
    const phases = PHASES.map(([id]) => ms(`${prefix}${id}`)).join(" | ");
    breakdowns.push(`| ${runtime}, ${shown}${build} | ${ms("plain")} | ${ms(step!)} | ${phases} |`);
  }
}

async function p11(): Promise<void> {
  const image = await smallImage();
  const env: Record<string, string> = PLUGIN_B ? { SRUN_PLUGIN_B: PLUGIN_B } : {};
  const sides: [string, string][] = PLUGIN_B ? [["", " (A)"], ["_b", " (B)"]] : [["", ""]];
  const bwrap = await srunHarness("srun.sh", [image, String(P11_REPS), "bwrap"], env);
  const enroot = await srunHarness("srun.sh", [image, String(P11_REPS), "enroot"], { ...env, SRUN_SEED: "1" });
  for (const [suffix, build] of sides) {
    const what = `\`srun --container-cache … true\` warm / plain \`srun true\` (bwrap, 1 MB image)${build}`;
    if (typeof bwrap === "string") {
      rows.push({ id: "P11b", what, a: [], b: [], target: "≤ +10 ms", met: bwrap });
    } else {
      const [a, b] = [bwrap.get(`warm${suffix}`) ?? [], bwrap.get(`plain${suffix}`) ?? []];
      const extra = median(a.map((r) => r.ms)) - median(b.map((r) => r.ms));
      rows.push({ id: "P11b", what, a, b, target: "≤ +10 ms", met: extra <= 10, note: `+${extra.toFixed(1)} ms` });
      breakdown("bwrap", bwrap, suffix);
    }
    // Each enroot row: A's steps of one label over the seed's of another, and the target ratio.
    const enrootRows: [string, string, string, string, number][] = [
      ["P11e", "enroot warm / the seed PR's (`srun true` + `enroot start` of the entry)", "warm", "seed", 0.9],
      [
        "P11c",
        "enroot cold, the entry evicted / the seed PR's (`srun true` + `enroot create` + `enroot start`)",
        "cold",
        "seedcold",
        1.0,
      ],
      ["P11f", "enroot cold, the node's first sight of the image (no record) / the same", "coldfirst", "seedcold", 1.0],
    ];
    if (typeof enroot === "string") {
      for (const [id, what, , , limit] of enrootRows) {
        rows.push({ id, what: `${what}${build}`, a: [], b: [], target: `≤ ${limit.toFixed(1)}×`, met: enroot });
      }
      continue;
    }
    const get = (label: string) => enroot.get(`${label}${suffix}`) ?? [];
    const plainMs = median(get("plain").map((r) => r.ms)).toFixed(0);
    for (const [id, what, a, b, limit] of enrootRows) {
      const ratio = median(get(a).map((r) => r.ms)) / median(get(b).map((r) => r.ms));
      rows.push({
        id,
        what: `${what}${build}`,
        a: get(a),
        b: get(b),
        target: `≤ ${limit.toFixed(1)}×`,
        met: ratio <= limit,
        ...(id === "P11c" ? { note: `plain \`srun true\` ${plainMs} ms` } : {}),
      });
    }
    breakdown("enroot", enroot, suffix);
  }
}

// ---------------------------------------------------------------- registry images (P8, P9)

const REGISTRY_FILES = QUICK ? 2_000 : 5_000;
const REGISTRY_MEGABYTES = QUICK ? 20 : 100;

/**
 * A registry on 127.0.0.1 (tests/lib/registry.sh) holding a synthetic image of REGISTRY_FILES
 * files and REGISTRY_MEGABYTES MB, its storage kept in BENCH_DIR so that later runs push nothing;
 * and the environment that imports from it (enroot on PATH, http allowed).
 */
async function benchRegistry(): Promise<{ ref: string; env: Record<string, string>; stop: () => Promise<void> }> {
  const enroot = await enrootDir();
  if (!enroot) throw new Error("skipped: enroot is not installed and could not be built");
  const registry = await startRegistry(`${WORK}/registry`);
  const tag = `${REGISTRY_FILES}f-${REGISTRY_MEGABYTES}m-${await sha(`${REPO}/bench/rootfs.ts`)}`;
  const ref = `${registry.address}#bench/rootfs:${tag}`;
  const env = { PATH: `${enroot}:${Deno.env.get("PATH")}`, ENROOT_ALLOW_HTTP: "y" };
  const manifest = `http://${registry.address}/v2/bench/rootfs/manifests/${tag}`;
  const accept = "Accept: application/vnd.docker.distribution.manifest.v2+json";
  const pushed = await new Deno.Command("curl", { args: ["-fsS", "-o", "/dev/null", "-H", accept, manifest] }).output();
  if (!pushed.success) {
    const tree = `${WORK}/registry-tree.${Deno.pid}`;
    console.error(`bench: pushing ${ref} (${REGISTRY_FILES} files, ${REGISTRY_MEGABYTES} MB; kept for later runs)`);
    generate(tree, REGISTRY_FILES, REGISTRY_MEGABYTES, 2);
    const push = await new Deno.Command("bash", {
      args: [`${REPO}/tests/lib/registry.sh`, "push", registry.dir, `bench/rootfs:${tag}`],
      env: { REGISTRY_TREE: tree },
      stdout: "null",
      stderr: "piped",
    }).output();
    await Deno.remove(tree, { recursive: true });
    if (!push.success) throw new Error(`registry.sh push: ${new TextDecoder().decode(push.stderr)}`);
  }
  return { ref, env, stop: registry.stop };
}

type BenchRegistry = Awaited<ReturnType<typeof benchRegistry>>;

/** Runs a figure against the bench registry, stopped afterwards; without one, the row says why. */
async function withBenchRegistry(
  row: { id: string; what: string; target: string },
  figure: (registry: BenchRegistry) => Promise<void>,
): Promise<void> {
  let registry: BenchRegistry;
  try {
    registry = await benchRegistry();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    rows.push({ ...row, a: [], b: [], met: message.startsWith("skipped:") ? message : `skipped: ${message}` });
    return;
  }
  try {
    await figure(registry);
  } finally {
    await registry.stop();
  }
}

function p8(image: string): Promise<void> {
  const what = "warm `reuse` of a registry tag (digest fresh) / warm `reuse` of a squashfs file";
  return withBenchRegistry({ id: "P8", what, target: "≤ +10 ms" }, async (registry) => {
    const base = `${FS}/p8`;
    await prepareUser(base);
    const ref = [CLI, "reuse", "--image", registry.ref, ...config(base)];
    const file = [CLI, "reuse", "--image", image, ...config(base)];
    await measure(ref, { env: registry.env });
    await measure(file);
    const { a, b } = await sideBySide(FAST_REPS, { run: () => measure(ref, { env: registry.env }) }, {
      run: () => measure(file),
    }, 2);
    const extra = median(a.map((r) => r.ms)) - median(b.map((r) => r.ms));
    rows.push({ id: "P8", what, a, b, target: "≤ +10 ms", met: extra <= 10, note: `${extra.toFixed(1)} ms` });
  });
}

/** P8 through srun: bench/srun-registry.sh prints one "file|ref <ms>" line per warm step. */
function p8s(image: string): Promise<void> {
  const what = "warm `srun --container-cache … true` of a registry tag (digest fresh) / of a squashfs file (bwrap)";
  return withBenchRegistry({ id: "P8s", what, target: "≤ +10 ms" }, async (registry) => {
    const enroot = registry.env.PATH!.split(":")[0]!;
    const runs = await srunHarness("srun-registry.sh", [image, registry.ref, String(REPS), enroot]);
    if (typeof runs === "string") {
      rows.push({ id: "P8s", what, a: [], b: [], target: "≤ +10 ms", met: runs });
      return;
    }
    const [a, b] = [runs.get("ref") ?? [], runs.get("file") ?? []];
    const extra = median(a.map((r) => r.ms)) - median(b.map((r) => r.ms));
    rows.push({ id: "P8s", what, a, b, target: "≤ +10 ms", met: extra <= 10, note: `${extra.toFixed(1)} ms` });
  });
}

function p9(): Promise<void> {
  const what =
    `cold \`reuse\` of a registry tag (ask, import, unpack) / pyxis's \`enroot import\` + \`enroot create\` ` +
    `(${REGISTRY_MEGABYTES} MB, ${REGISTRY_FILES} files)`;
  return withBenchRegistry({ id: "P9", what, target: "(figure)" }, async (registry) => {
    const base = `${FS}/p9`;
    const scratch = `${await userScratch()}/p9-enroot`;
    await prepareUser(base);
    // pyxis's path, as the job user, with every enroot path fresh: no layer cache, as for our cold import.
    const enroot = {
      ...registry.env,
      ENROOT_CACHE_PATH: `${scratch}/cache`,
      ENROOT_DATA_PATH: `${scratch}/data`,
      ENROOT_RUNTIME_PATH: `${scratch}/run`,
      ENROOT_TEMP_PATH: scratch,
      ENROOT_CONFIG_PATH: `${scratch}/config`,
    };
    const pyxis = `mkdir -p ${scratch} && enroot import -o ${scratch}/image.sqsh docker://${registry.ref} && ` +
      `enroot create -n bench ${scratch}/image.sqsh && rm -f ${scratch}/image.sqsh`;
    const interval = ["--set", "container_cache_registry_interval=0"];
    const reuse = [CLI, "reuse", "--json", "--image", registry.ref, ...config(base), ...interval];
    const { a, b } = await sideBySide(REPS, coldReuse("P9", reuse, registry.env), {
      setup: dropWriteback,
      run: () => measure(["sh", "-c", pyxis], { env: enroot }),
      after: () => Deno.remove(scratch, { recursive: true }),
    });
    rows.push({ id: "P9", what, a, b, target: "(figure)", met: true });
  });
}

// ---------------------------------------------------------------- the table

function spread(values: number[], digits = 0): string {
  if (values.length === 0) return "–";
  const f = (v: number) => v.toFixed(digits);
  return `${f(median(values))} (${f(Math.min(...values))}–${f(Math.max(...values))})`;
}

function table(): string {
  const lines = [
    "| | measure | A ms | B ms | A/B | peak RSS A / B MiB | target | met |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    if (typeof row.met === "string") {
      lines.push(`| ${row.id} | ${row.what} | | | | | ${row.target} | ${row.met} |`);
      continue;
    }
    const ratios = row.a.map((r, i) => r.ms / row.b[i]!.ms);
    const ratio = `${(median(row.a.map((r) => r.ms)) / median(row.b.map((r) => r.ms))).toFixed(2)}× (pairs ${
      Math.min(...ratios).toFixed(2)
    }–${Math.max(...ratios).toFixed(2)})`;
    const rss = (runs: Run[]) =>
      runs.some((r) => r.rssKiB) ? (Math.max(...runs.map((r) => r.rssKiB)) / 1024).toFixed(0) : "–";
    lines.push(
      `| ${row.id} | ${row.what} | ${spread(row.a.map((r) => r.ms))} | ${
        spread(row.b.map((r) => r.ms))
      } | ${ratio} | ` +
        `${rss(row.a)} / ${rss(row.b)} | ${row.target} | ${row.met ? "yes" : "**no**"}${
          row.note ? `: ${row.note}` : ""
        } |`,
    );
  }
  return lines.join("\n");
}

async function machine(): Promise<string> {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const memKiB = Number(Deno.readTextFileSync("/proc/meminfo").match(/MemTotal:\s*(\d+)/)?.[1] ?? 0);
  const kernel = (await sh(["uname", "-r"])).trim();
  const fs = (await sh(["stat", "-f", "-c", "%T", FS])).trim();
  const unsquashfs = (await sh(["unsquashfs", "-version"], { quiet: true })).split("\n")[0];
  return `${navigator.hardwareConcurrency} CPUs (${cpu}), ${(memKiB / 2 ** 20).toFixed(0)} GiB RAM, ` +
    `Linux ${kernel}, cache roots on ${fs}, Deno ${Deno.version.deno}, ${unsquashfs}`;
}

if (import.meta.main) {
  await Deno.mkdir(WORK, { recursive: true });
  for (const dir of [RSS_DIR, USER_HOME]) {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.chown(dir, USER.uid, USER.gid);
  }
  // P4, P9 and P11 do without the 400 MB image: it is built only for the others.
  const needsImage = !ONLY || ONLY.some((id) => !["P4", "P9", "P11"].includes(id));
  const image = needsImage ? await testImage() : "";
  const imageBytes = needsImage ? (await Deno.stat(image)).size : 0;
  for (const dir of ["p1", "p2", "p3", "p5", "p8", "p9", `scratch-${USER.uid}`]) {
    await Deno.remove(`${FS}/${dir}`, { recursive: true }).catch(() => {});
  }
  const figures: [string, () => Promise<void>][] = [
    ["P1", () => p1(image)],
    ["P2", () => p2(image)],
    ["P3", () => p3(image)],
    ["P4", p4],
    ["P5", () => p5(image)],
    ["P6", () => p6(image, "bwrap", "P6")],
    ["P7", () => p6(image, "enroot", "P7")],
    ["P8", () => p8(image)],
    ["P8s", () => p8s(image)],
    ["P9", p9],
    ["P10", () => p10(image)],
    ["P11", p11],
  ];
  for (const [id, figure] of figures) {
    if (!want(id)) continue;
    console.error(`bench: ${id}`);
    await figure();
  }
  console.log(`machine: ${await machine()}`);
  console.log(
    `image: ${needsImage ? `${image} (${FILES} files, ${(imageBytes / 2 ** 20).toFixed(0)} MiB)` : "(not needed)"}; ` +
      `${REPS} repetitions (${FAST_REPS} for P1, ${P11_REPS} rounds for P11), A and B alternating` +
      `${QUICK ? "; QUICK mode" : ""}`,
  );
  console.log(`load average at the end: ${Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")}`);
  console.log("");
  console.log(table());
  if (breakdowns.length) {
    console.log("");
    console.log(
      `P11: a step, phase by phase (medians over ${P11_REPS} rounds, ms; from the stub's stamps in slurmd's log; ` +
        "a cold step's FUSE mount and creator are in the rest of user_init)",
    );
    console.log("");
    console.log(`| runtime, step | plain \`srun true\` | the step | ${PHASES.map(([, what]) => what).join(" | ")} |`);
    console.log(`|---|---|---|${PHASES.map(() => "---").join("|")}|`);
    for (const line of breakdowns) console.log(line);
  }
}
