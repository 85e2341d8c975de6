import assert from "node:assert/strict";
import { collect } from "../lib/cache/collect.ts";
import { parseConfig } from "../lib/config/config.ts";
import { readMeta } from "../lib/store/entries.ts";
import { reuse } from "../lib/cache/reuse.ts";
import type { UsageSource } from "../lib/os/usage.ts";
import { lookupUid } from "../lib/os/users.ts";
import { cli, IS_ROOT, listing, makeImage, manifest, NOBODY, run, settings, sleep, tempDir } from "./helpers.ts";

/** Holds `flock -s` on a path in another process, as a running step does. */
async function holdShared(path: string): Promise<Deno.ChildProcess> {
  const holder = new Deno.Command("flock", { args: ["-s", "-o", path, "sleep", "600"], stdin: "null" }).spawn();
  const probe = await Deno.open(path, { read: true });
  try {
    // Bounded only so that a holder that never locks fails the test instead of hanging it.
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(10)) {
      if (!(await probe.tryLock(true))) return holder; // the holder has it now
      await probe.unlock();
    }
  } finally {
    probe.close();
  }
  throw new Error(`flock -s ${path} did not take the lock in 30 s`);
}

/** Creates `count` entries of distinct images, oldest first by mtime. */
async function entries(dir: string, base: string, count: number, bytes: number) {
  const config = parseConfig([`container_cache_data_path=${base}`], "test");
  // What `prepare` does as root; a user needs only a directory of their own.
  if (!IS_ROOT) await Deno.mkdir(`${base}/${Deno.uid()}`, { recursive: true, mode: 0o700 });
  const made = [];
  for (let i = 0; i < count; i++) {
    await makeImage(`${dir}/img${i}.sqfs`, { "payload": bytes, "etc/os-release": `ID=${i}\n` });
    const entry = await reuse(config, {
      image: `${dir}/img${i}.sqfs`,
      usage: () => Promise.resolve({ percent: 0, usedBytes: 0, availableBytes: 1 }),
    });
    await Deno.utime(entry.path, 1_000_000 + i * 1000, 1_000_000 + i * 1000);
    made.push({ ...entry, bytes: readMeta(entry.path)!.bytes });
  }
  return made;
}

Deno.test({
  name: "collect() evicts least recently used first and stops at the low watermark (exact arithmetic)",
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    const made = await entries(dir, base, 6, 20_000);
    const total = made.reduce((sum, e) => sum + e.bytes, 0);
    const capacity = Math.ceil((total * 100) / 90); // the cache is 90% full
    // Use is what the remaining entries recorded, against a fixed capacity.
    const usage: UsageSource = async () => {
      let used = 0;
      for (const e of made) if (await Deno.lstat(e.path).then(() => true, () => false)) used += e.bytes;
      return { percent: (used * 100) / capacity, usedBytes: used, availableBytes: capacity - used };
    };
    const config = parseConfig([
      `container_cache_data_path=${base}`,
      "container_cache_gc_high=85",
      "container_cache_gc_low=50",
    ], "t");
    let used = total;
    const expected = [];
    for (const e of made) {
      if ((used * 100) / capacity <= 50) break;
      expected.push(e.name);
      used -= e.bytes;
    }
    const result = await collect(config, { usage });
    assert.deepEqual(result.evicted.map((e) => e.name), expected);
    assert.ok(expected.length >= 2 && expected.length < made.length);
    assert.equal(result.usageBefore, Math.round(((total * 100) / capacity) * 100) / 100);
    assert.equal(result.usageAfter, Math.round(((used * 100) / capacity) * 100) / 100);
    assert.deepEqual(result.evicted.map((e) => e.bytes), made.slice(0, expected.length).map((e) => e.bytes));
    for (const e of made.slice(expected.length)) await Deno.lstat(e.path);

    const calm = await collect(config, { usage });
    assert.deepEqual(calm.evicted, [], "below the high watermark nothing goes");
  },
});

Deno.test({
  name: "gc on a real small filesystem: oldest first down to low, an entry held with flock -s kept",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await Deno.mkdir(`${dir}/fs`);
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", `${dir}/fs`]);
    assert.equal(mounted.code, 0, mounted.stderr);
    const base = `${dir}/fs/cache`;
    const made = await entries(dir, base, 5, 7 * 1024 * 1024);
    const holder = await holdShared(made[0]!.lock);
    try {
      const gc = await cli([
        "gc",
        "--json",
        ...settings(base, { container_cache_gc_high: 60, container_cache_gc_low: 35 }),
      ]);
      assert.equal(gc.code, 0, gc.stderr);
      const result = JSON.parse(gc.stdout);
      assert.ok(result.usageBefore >= 60, `filled above high: ${result.usageBefore}`);
      assert.ok(result.usageAfter <= 35, `down to low: ${result.usageAfter}`);
      assert.deepEqual(result.skippedInUse.map((e: { name: string }) => e.name), [made[0]!.name]);
      assert.deepEqual(result.evicted.map((e: { name: string }) => e.name), made.slice(1, 4).map((e) => e.name));
      assert.deepEqual(
        (await listing(`${base}/${Deno.uid()}`)).filter((n) => n.startsWith("pyxis_cache_")),
        [made[0]!.name, made[4]!.name].sort(),
      );
    } finally {
      holder.kill();
      await holder.status;
    }
  },
});

Deno.test({
  name: "gc as root never follows a symlink planted as an entry, in an entry, or as a leftover",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    const [entry] = await entries(dir, base, 1, 1000);
    const outside = `${dir}/outside`;
    await Deno.mkdir(`${outside}/tree`, { recursive: true });
    await Deno.writeTextFile(`${outside}/tree/precious`, "keep me\n");
    await Deno.writeTextFile(`${outside}/file`, "keep me too\n");
    const before = await manifest(outside);
    const userDir = `${base}/${Deno.uid()}`;
    await Deno.symlink(`${outside}/tree`, `${userDir}/pyxis_cache_u${Deno.uid()}_${"a".repeat(20)}`);
    await Deno.symlink(`${outside}/tree`, `${entry!.path}/link-to-dir`);
    await Deno.symlink(`${outside}/file`, `${entry!.path}/link-to-file`);
    await Deno.symlink(`${outside}/tree`, `${userDir}/.pyxis_cache_trash.${entry!.name}.beef`);

    const gc = await cli([
      "gc",
      "--json",
      ...settings(base, { container_cache_gc_high: 2, container_cache_gc_low: 1 }),
    ]);
    const result = JSON.parse(gc.stdout);
    assert.deepEqual(result.evicted.map((e: { name: string }) => e.name), [entry!.name]);
    // Not the cache's: reported, and removed (the link, never what it points to) once stale, not yet.
    assert.match(gc.stderr, /pyxis_cache_u\d+_a{20}: not a directory: not the cache's/);
    assert.deepEqual(await manifest(outside), before);
    assert.deepEqual(await listing(userDir), [`pyxis_cache_u${Deno.uid()}_${"a".repeat(20)}`]);
  },
});

Deno.test({
  name: "gc: one collector at a time; a second one exits 0 saying it skipped; --dry-run changes nothing",
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    await entries(dir, base, 2, 1000);
    const forced = settings(base, { container_cache_gc_high: 2, container_cache_gc_low: 1 });
    // Root's collector takes the lock in <base>; a user's, the one in their own directory (made here once).
    const gcLock = IS_ROOT ? `${base}/pyxis-container-cache-gc.lock` : `${base}/${Deno.uid()}/.pyxis_cache_gc.lock`;
    if (!IS_ROOT) await Deno.writeTextFile(gcLock, "");
    const before = await manifest(base);
    const dry = await cli(["gc", "--dry-run", "--json", ...forced]);
    assert.equal(JSON.parse(dry.stdout).evicted.length, 2);
    assert.deepEqual(await manifest(base), before);

    const holder = await holdShared(gcLock);
    try {
      const second = await cli(["gc", ...forced]);
      assert.equal(second.code, 0);
      assert.match(second.stdout, /skipped: another collector is running/);
      assert.deepEqual(await manifest(base), before);
    } finally {
      holder.kill();
      await holder.status;
    }
  },
});

Deno.test({
  name: "status reports use against the watermarks and every entry, in use or not",
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    const made = await entries(dir, base, 2, 1000);
    const holder = await holdShared(made[1]!.lock);
    try {
      const result = await cli([
        "status",
        "--json",
        ...settings(base, { container_cache_gc_high: 70, container_cache_gc_low: 60 }),
      ]);
      assert.equal(result.code, 0, result.stderr);
      const status = JSON.parse(result.stdout);
      assert.equal(typeof status.usage, "number");
      assert.deepEqual([status.high, status.low], [70, 60]);
      const rows = status.entries.map((
        e: Record<string, unknown>,
      ) => [e.name, e.uid, e.path, e.bytes, e.inUse, e.image]);
      assert.deepEqual(rows, made.map((e, i) => [e.name, Deno.uid(), e.path, e.bytes, i === 1, e.image]));
      assert.equal(status.entries[0].lastUsed, new Date(1_000_000_000).toISOString());
      const table = await cli(["status", ...settings(base)]);
      const user = lookupUid(Deno.uid()!)?.name ?? String(Deno.uid());
      assert.match(table.stdout, new RegExp(`${user} +${Deno.uid()} .* no +${made[0]!.name} +${dir}/img0\\.sqfs`));
      assert.match(table.stdout, new RegExp(`yes +${made[1]!.name}`));
    } finally {
      holder.kill();
      await holder.status;
    }
  },
});

Deno.test({
  name: "reuse of a new image above the high watermark collects first, never what it creates",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await Deno.mkdir(`${dir}/fs`);
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=32m", "tmpfs", `${dir}/fs`]);
    assert.equal(mounted.code, 0, mounted.stderr);
    const base = `${dir}/fs/cache`;
    const made = await entries(dir, base, 3, 6 * 1024 * 1024);
    await makeImage(`${dir}/new.sqfs`, { "payload": 6 * 1024 * 1024 });
    const config = settings(base, { container_cache_gc_high: 50, container_cache_gc_low: 30 });
    const reused = await cli(["reuse", "--image", `${dir}/new.sqfs`, "--json", ...config]);
    assert.equal(reused.code, 0, reused.stderr);
    const created = JSON.parse(reused.stdout);
    assert.equal(created.created, true);
    const left = (await listing(`${base}/${Deno.uid()}`)).filter((n) => n.startsWith("pyxis_cache_"));
    assert.ok(left.includes(created.name));
    assert.ok(!left.includes(made[0]!.name), "the least recently used entry made room");
    assert.ok(left.includes(made[2]!.name), "collection stopped at the low watermark");
  },
});

Deno.test({
  name: "gc removes a dead step's rootfs, never a running step's, never a symlink's target",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    await entries(dir, base, 1, 1000);
    const userDir = `${base}/${Deno.uid()}`;
    const [alive, dead, planted] = ["1.0.aaaaaa", "2.0.bbbbbb", "3.0.cccccc"].map((s) =>
      `${userDir}/.pyxis_cache_step_${s}`
    );
    for (const step of [alive!, dead!]) await Deno.mkdir(`${step}/rootfs/etc`, { recursive: true });
    await Deno.mkdir(`${dir}/outside`);
    await Deno.writeTextFile(`${dir}/outside/precious`, "keep\n");
    await Deno.symlink(`${dir}/outside`, planted!);
    const holder = await holdShared(alive!);
    try {
      const gc = await cli(["gc", "--json", "--stale-after", "0", ...settings(base)]);
      assert.equal(gc.code, 0, gc.stderr);
      assert.deepEqual(JSON.parse(gc.stdout).removedLeftovers.sort(), [dead, planted].sort());
      assert.ok((await Deno.stat(`${alive}/rootfs/etc`)).isDirectory);
      assert.equal(await Deno.readTextFile(`${dir}/outside/precious`), "keep\n");
    } finally {
      holder.kill();
      await holder.status;
    }
    const after = await cli(["gc", "--json", "--stale-after", "0", ...settings(base)]);
    assert.deepEqual(JSON.parse(after.stdout).removedLeftovers, [alive]);
  },
});

Deno.test({
  name: "users cannot hold the collector lock; a user's gc takes their own and reaches only their entries",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    const [rootEntry] = await entries(dir, base, 1, 1000);
    const forced = settings(base, { container_cache_gc_high: 2, container_cache_gc_low: 1 });
    await cli(["prepare", "--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid), ...forced]);
    const gcLock = await Deno.stat(`${base}/pyxis-container-cache-gc.lock`);
    assert.equal(gcLock.mode! & 0o777, 0o600);
    const blocked = await run("flock", ["-x", `${base}/pyxis-container-cache-gc.lock`, "true"], NOBODY);
    assert.notEqual(blocked.code, 0, "a user opened the collector lock");

    await makeImage(`${dir}/mine.sqfs`, { "f": 1000 });
    const mine = JSON.parse(
      (await cli(["reuse", "--image", `${dir}/mine.sqfs`, "--json", ...forced], { as: NOBODY })).stdout,
    );
    const holder = await holdShared(`${base}/pyxis-container-cache-gc.lock`); // root's collector is busy
    try {
      const gc = await cli(["gc", "--json", ...forced], { as: NOBODY });
      assert.equal(gc.code, 0, gc.stderr);
      const result = JSON.parse(gc.stdout);
      assert.equal(result.skipped, false);
      assert.deepEqual(result.evicted.map((e: { name: string }) => e.name), [mine.name]);
      await Deno.lstat(rootEntry!.path);
    } finally {
      holder.kill();
      await holder.status;
    }
  },
});

Deno.test({
  name:
    "gc removes a creation lock nobody holds whose entry does not exist; never a held one or an entry's; a symlink as the link only",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    const [entry] = await entries(dir, base, 1, 1000);
    const userDir = `${base}/${Deno.uid()}`;
    const lockOf = (hash: string) => `${userDir}/.pyxis_cache_create.pyxis_cache_u${Deno.uid()}_${hash}`;
    const [failed, running, planted] = ["1", "2", "3"].map((c) => lockOf(c.repeat(20)));
    const kept = `${userDir}/.pyxis_cache_create.${entry!.name}`;
    assert.ok((await Deno.lstat(kept)).isFile, "reuse leaves its entry's creation lock");
    await Deno.writeTextFile(failed!, ""); // what a create that ran out of space leaves
    await Deno.writeTextFile(running!, "");
    await Deno.writeTextFile(`${dir}/precious`, "keep\n");
    await Deno.symlink(`${dir}/precious`, planted!);
    const holder = await holdShared(running!);
    try {
      const young = await cli(["gc", "--json", ...settings(base)]);
      assert.deepEqual(JSON.parse(young.stdout).removedLeftovers, [], "a lock younger than --stale-after stays");
      const gc = await cli(["gc", "--json", "--stale-after", "0", ...settings(base)]);
      assert.equal(gc.code, 0, gc.stderr);
      // A symlink under a lock's name is not the cache's: it goes once stale, as a link.
      assert.deepEqual(JSON.parse(gc.stdout).removedLeftovers.sort(), [failed, planted].sort());
      assert.deepEqual(
        (await listing(userDir)).filter((n) => n.startsWith(".pyxis_cache_create.")).map((n) => `${userDir}/${n}`),
        [kept, running].sort(),
      );
      assert.equal(await Deno.readTextFile(`${dir}/precious`), "keep\n");
    } finally {
      holder.kill();
      await holder.status;
    }
    const after = await cli(["gc", "--json", "--stale-after", "0", ...settings(base)]);
    assert.deepEqual(JSON.parse(after.stdout).removedLeftovers, [running]);
    // The entry still creates and reuses as before.
    const again = await cli(["reuse", "--image", `${dir}/img0.sqfs`, "--json", ...settings(base)]);
    assert.deepEqual([again.code, JSON.parse(again.stdout).created], [0, false]);
  },
});

Deno.test({
  name: "gc and status leave root's record of answers alone (<base>/.pyxis_cache_answers): not a user's, not foreign",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const base = `${dir}/cache`;
    await entries(dir, base, 1, 1000);
    // What the SPANK stub's answers.c writes (root's, 0700 / 0600), a large one so that counting it would show.
    const answers = `${base}/.pyxis_cache_answers`;
    await Deno.mkdir(answers, { mode: 0o700 });
    const record = `${answers}/${Deno.uid()}.0a1b`;
    await Deno.writeFile(record, new Uint8Array(200_000), { mode: 0o600 });
    const before = JSON.parse((await cli(["status", "--json", ...settings(base)])).stdout);
    const gc = await cli(["gc", "--all", "--json", "--stale-after", "0", ...settings(base)]);
    assert.equal(gc.code, 0, gc.stderr);
    const result = JSON.parse(gc.stdout);
    assert.equal(result.evicted.length, 1, "the entry went");
    assert.deepEqual(result.removedLeftovers, []);
    assert.equal((await Deno.readFile(record)).length, 200_000);
    // Every byte status counts to a user is under <base>/<uid>: the record is under none.
    for (const user of before.users) assert.ok(user.bytes < 200_000, JSON.stringify(user));
    assert.ok(before.entries.every((e: { path: string }) => !e.path.includes(".pyxis_cache_answers")));
  },
});
