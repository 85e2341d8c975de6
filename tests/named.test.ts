import assert from "node:assert/strict";
import { NAMED_MAX_AGE_SECONDS } from "../lib/cache/collect.ts";
import { cli, settings, sleep, tempDir } from "./helpers.ts";

/** A named container's directory as the SPANK stub leaves it between steps (spank-stub/named.c). */
async function named(userDir: string, scope: string, name: string, ageSeconds = 0): Promise<string> {
  const hex = Array.from(new TextEncoder().encode(name), (b) => b.toString(16).padStart(2, "0")).join("");
  const path = `${userDir}/.pyxis_cache_named.${scope}.${hex}`;
  await Deno.mkdir(`${path}/upper/etc`, { recursive: true, mode: 0o700 });
  await Deno.mkdir(`${path}/work/work`, { recursive: true });
  await Deno.chmod(`${path}/work/work`, 0o000); // as overlayfs leaves it
  await Deno.writeTextFile(`${path}/upper/etc/kept`, "written by a step\n");
  await Deno.writeTextFile(`${path}/entry`, `pyxis_cache_u${Deno.uid()}_0123456789abcdef0123\n`);
  const when = Date.now() / 1000 - ageSeconds;
  await Deno.utime(path, when, when);
  return path;
}

/** Holds `flock -x` on a directory in another process, as slurmstepd holds a named container a step uses. */
async function holdExclusive(path: string): Promise<Deno.ChildProcess> {
  const holder = new Deno.Command("flock", { args: ["-x", "-o", path, "sleep", "600"], stdin: "null" }).spawn();
  const probe = await Deno.open(path, { read: true });
  try {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(10)) {
      if (!(await probe.tryLock(true))) return holder;
      await probe.unlock();
    }
  } finally {
    probe.close();
  }
  throw new Error(`flock -x ${path} did not take the lock in 30 s`);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test({
  name: "gc keeps a named container between its steps, and removes one unused for a week that no step holds",
  async fn() {
    await using tmp = await tempDir();
    const base = `${tmp.path}/cache`;
    const userDir = `${base}/${Deno.uid()}`;
    await Deno.mkdir(userDir, { recursive: true, mode: 0o700 });
    const recent = await named(userDir, "7", "recent", 3600);
    const old = await named(userDir, "g", "old", NAMED_MAX_AGE_SECONDS + 60);
    const held = await named(userDir, "8", "held", NAMED_MAX_AGE_SECONDS + 60);
    const holder = await holdExclusive(held);
    try {
      // --stale-after 0: every other leftover's age; a named container has its own.
      const gc = await cli(["gc", "--json", "--stale-after", "0", ...settings(base)]);
      assert.equal(gc.code, 0, gc.stderr);
      assert.deepEqual(JSON.parse(gc.stdout).removedLeftovers, [old]);
      assert.equal(await Deno.readTextFile(`${recent}/upper/etc/kept`), "written by a step\n");
      assert.ok(await exists(`${held}/upper/etc/kept`));
    } finally {
      holder.kill();
      await holder.status;
    }
    const after = await cli(["gc", "--json", "--stale-after", "0", ...settings(base)]);
    assert.deepEqual(JSON.parse(after.stdout).removedLeftovers, [held]);
    assert.ok(await exists(recent));
  },
});

Deno.test({
  name: "a named container counts to its user's holdings",
  async fn() {
    await using tmp = await tempDir();
    const base = `${tmp.path}/cache`;
    const userDir = `${base}/${Deno.uid()}`;
    await Deno.mkdir(userDir, { recursive: true, mode: 0o700 });
    const path = await named(userDir, "7", "big");
    await Deno.writeFile(`${path}/upper/payload`, new Uint8Array(1 << 20));
    const status = await cli(["status", "--json", ...settings(base)]);
    assert.equal(status.code, 0, status.stderr);
    const [user] = JSON.parse(status.stdout).users;
    assert.equal(user.uid, Deno.uid());
    assert.ok(user.otherBytes >= 1 << 20, status.stdout);
    assert.equal(user.bytes, user.otherBytes);
  },
});

Deno.test({
  name: "release --job removes the job's named containers only, and none a step holds",
  async fn() {
    await using tmp = await tempDir();
    const base = `${tmp.path}/cache`;
    const userDir = `${base}/${Deno.uid()}`;
    await Deno.mkdir(userDir, { recursive: true, mode: 0o700 });
    const [a, b, busy, otherJob, global] = [
      await named(userDir, "41", "a"),
      await named(userDir, "41", "b/c".replace("/", "-")),
      await named(userDir, "41", "busy"),
      await named(userDir, "411", "a"),
      await named(userDir, "g", "a"),
    ];
    await Deno.mkdir(`${tmp.path}/outside`);
    await Deno.writeTextFile(`${tmp.path}/outside/precious`, "keep\n");
    const planted = `${userDir}/.pyxis_cache_named.41.6c6c`;
    await Deno.symlink(`${tmp.path}/outside`, planted);
    const holder = await holdExclusive(busy);
    try {
      const release = await cli(["release", "--job", "41", ...settings(base)]);
      assert.equal(release.code, 0, release.stderr);
      assert.match(release.stderr, /in use by a step: left to the collector/);
      assert.deepEqual([await exists(a), await exists(b)], [false, false]);
      assert.deepEqual([await exists(busy), await exists(otherJob), await exists(global)], [true, true, true]);
      assert.equal(await Deno.readTextFile(`${tmp.path}/outside/precious`), "keep\n");
    } finally {
      holder.kill();
      await holder.status;
    }
    const bad = await cli(["release", "--job", "4x", ...settings(base)]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--job: invalid value: 4x/);
  },
});
