/**
 * What the SPANK stub's cold path asks of the command: `reuse --no-wait` (the entry's
 * state, creating nothing), `reuse --unless-busy` (the background creator), and
 * `status` showing unpacks in progress and steps served from a mount.
 */
import assert from "node:assert/strict";
import { cli, listing, makeImage, settings, tempDir } from "./helpers.ts";

/** Another process holding flock(1) on `path` (shared or exclusive) until disposed. */
async function holdLock(path: string, mode: "-s" | "-x"): Promise<AsyncDisposable> {
  const child = new Deno.Command("flock", {
    // --no-fork: the command is flock itself, so killing it releases the lock.
    args: ["--no-fork", mode, path, "sh", "-c", "echo held; exec sleep 600"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert.equal(new TextDecoder().decode(first.value), "held\n", "flock took the lock");
  reader.releaseLock();
  return {
    async [Symbol.asyncDispose]() {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel();
    },
  };
}

async function setUp(dir: string) {
  await makeImage(`${dir}/img.sqfs`, { "etc/os-release": "ID=bg\n", "bin/tool": 200_000 });
  const config = settings(`${dir}/cache`);
  const name = (await cli(["key", "--image", `${dir}/img.sqfs`])).stdout.trim();
  const userDir = `${dir}/cache/${Deno.uid()}`;
  const prepared = await cli(["prepare", "--uid", String(Deno.uid()), "--gid", String(Deno.gid()), ...config]);
  assert.equal(prepared.code, 0, prepared.stderr);
  return { config, name, userDir, entry: `${userDir}/${name}`, createLock: `${userDir}/.pyxis_cache_create.${name}` };
}

Deno.test("reuse --no-wait says absent, unpacking or ready, and creates nothing", async () => {
  await using tmp = await tempDir();
  const { config, entry, createLock, userDir } = await setUp(tmp.path);
  const ask = () => cli(["reuse", "--image", `${tmp.path}/img.sqfs`, "--no-wait", ...config]);
  // Then the file identified, by device and inode: a cold step's FUSE daemon reads that file only.
  const image = await Deno.stat(`${tmp.path}/img.sqfs`);
  const file = `${image.dev} ${image.ino}`;

  const absent = await ask();
  assert.equal(absent.code, 0, absent.stderr);
  assert.equal(absent.stdout, `${entry} absent file ${file}\n`);
  assert.deepEqual(await listing(userDir), [], "nothing created, not even a creation lock");

  await Deno.writeTextFile(createLock, "");
  {
    await using _creator = await holdLock(createLock, "-x");
    assert.equal((await ask()).stdout, `${entry} unpacking file ${file}\n`);
    const json = JSON.parse(
      (await cli(["reuse", "--image", `${tmp.path}/img.sqfs`, "--no-wait", "--json", ...config])).stdout,
    );
    assert.equal(json.state, "unpacking");
    assert.equal(json.created, false);
    assert.deepEqual([json.device, json.inode], [image.dev, image.ino]);
  }
  assert.equal((await ask()).stdout, `${entry} absent file ${file}\n`, "a creator that is gone holds nothing");

  const created = await cli(["reuse", "--image", `${tmp.path}/img.sqfs`, ...config]);
  assert.equal(created.code, 0, created.stderr);
  await Deno.utime(entry, 0, 0);
  assert.equal((await ask()).stdout, `${entry} ready file ${file}\n`);
  assert.ok((await Deno.stat(entry)).mtime!.getTime() > Date.now() - 60_000, "a ready entry is touched");
});

Deno.test("reuse --no-wait says which the user named: a file (a bare name of one too) or a registry image", async () => {
  await using tmp = await tempDir();
  const { config, name } = await setUp(tmp.path);
  // The stub mounts only a file: it takes the command's word for it, and never guesses.
  await Deno.copyFile(`${tmp.path}/img.sqfs`, `${tmp.path}/plain-name`);
  for (const image of [`${tmp.path}/img.sqfs`, "./img.sqfs", "img.sqfs", "plain-name"]) {
    const out = await cli(["reuse", "--image", image, "--no-wait", "--name-only", ...config], { cwd: tmp.path });
    assert.match(
      out.stdout,
      image === "plain-name"
        ? /^pyxis_cache_u\d+_[0-9a-f]{20} absent file \d+ \d+\n$/
        : new RegExp(`^${name} absent file \\d+ \\d+\n$`),
      `${image}: ${out.stderr}`,
    );
  }
  const json = await cli(["reuse", "--image", "plain-name", "--no-wait", "--json", ...config], { cwd: tmp.path });
  assert.equal(JSON.parse(json.stdout).kind, "file");
  // A bare name that is no file here is a registry reference (which this registry cannot answer).
  const missing = await cli(["reuse", "--image", "no-such-name", "--no-wait", ...config], { cwd: tmp.path });
  // (Here no registry answers; where Docker Hub does, the reply ends in "registry".)
  assert.match(missing.stdout + missing.stderr, / absent registry\n$|registry-1\.docker\.io/);
});

Deno.test("reuse --unless-busy leaves the unpack to the creator at work, else creates and records what it unpacks", async () => {
  await using tmp = await tempDir();
  const { config, entry, createLock, userDir } = await setUp(tmp.path);
  const background = () => cli(["reuse", "--image", `${tmp.path}/img.sqfs`, "--unless-busy", "--json", ...config]);

  await Deno.writeTextFile(createLock, "");
  {
    await using _creator = await holdLock(createLock, "-x");
    const started = performance.now();
    const busy = await background();
    assert.equal(busy.code, 0, busy.stderr);
    const json = JSON.parse(busy.stdout);
    assert.deepEqual([json.state, json.created], ["unpacking", false]);
    // It returned while the lock was still held: it did not wait for the creator.
    assert.ok(performance.now() - started < 600_000);
    assert.deepEqual((await listing(userDir)).filter((n) => !n.startsWith(".pyxis_cache_create.")), []);
  }

  const free = await background();
  assert.equal(free.code, 0, free.stderr);
  assert.deepEqual([JSON.parse(free.stdout).state, JSON.parse(free.stdout).created], ["ready", true]);
  assert.equal(await Deno.readTextFile(`${entry}/etc/os-release`), "ID=bg\n");
  const record = JSON.parse(await Deno.readTextFile(createLock));
  assert.equal(record.image, `${tmp.path}/img.sqfs`);
  assert.equal(typeof record.pid, "number");
  assert.ok(Date.parse(record.startedAt) > Date.now() - 600_000);
});

Deno.test("8 concurrent --no-wait then --unless-busy callers (8 cold steps): one unpack, none waits", async () => {
  await using tmp = await tempDir();
  const { config, userDir } = await setUp(tmp.path);
  const image = `${tmp.path}/img.sqfs`;
  const asked = await Promise.all(
    Array.from({ length: 8 }, () => cli(["reuse", "--image", image, "--no-wait", ...config])),
  );
  assert.deepEqual(asked.map((r) => r.code), Array(8).fill(0), asked.map((r) => r.stderr).join(""));
  const runs = await Promise.all(
    Array.from({ length: 8 }, () => cli(["reuse", "--image", image, "--unless-busy", "--json", ...config])),
  );
  assert.deepEqual(runs.map((r) => r.code), Array(8).fill(0), runs.map((r) => r.stderr).join(""));
  const outputs = runs.map((r) => JSON.parse(r.stdout));
  assert.equal(outputs.filter((o) => o.created).length, 1, "exactly one caller unpacked");
  assert.ok(outputs.every((o) => o.created || o.state === "unpacking" || o.state === "ready"));
  assert.deepEqual((await listing(userDir)).filter((n) => n.startsWith(".pyxis_cache_tmp")), []);
});

Deno.test("reuse: --no-wait and --unless-busy together are a usage error", async () => {
  await using tmp = await tempDir();
  const { config, userDir } = await setUp(tmp.path);
  const both = await cli(["reuse", "--image", `${tmp.path}/img.sqfs`, "--no-wait", "--unless-busy", ...config]);
  assert.equal(both.code, 2);
  assert.equal(both.stderr, "pyxis-cache: reuse: --no-wait and --unless-busy exclude each other\n");
  assert.deepEqual(await listing(userDir), []);
});

Deno.test("status shows an unpack in progress with its image and the steps served from a mount; gc removes a dead step's mount point only", async () => {
  await using tmp = await tempDir();
  const { config, name, userDir, createLock } = await setUp(tmp.path);
  const temp = `${userDir}/.pyxis_cache_tmp.${name}.1a2b`;
  await Deno.mkdir(temp);
  await Deno.writeTextFile(
    createLock,
    JSON.stringify({ image: "/images/x.sqfs", startedAt: "2026-01-02T03:04:05.000Z", pid: 1 }),
  );
  const live = `${userDir}/.pyxis_cache_mnt.${name}.7.0.AbC123`;
  const dead = `${userDir}/.pyxis_cache_mnt.${name}.7.1.XyZ789`;
  await Deno.mkdir(live);
  await Deno.mkdir(dead);
  const status = async () => {
    const out = await cli(["status", "--json", ...config]);
    assert.equal(out.code, 0, out.stderr);
    return JSON.parse(out.stdout);
  };
  {
    await using _creator = await holdLock(createLock, "-x");
    await using _step = await holdLock(live, "-s");
    const report = await status();
    assert.deepEqual(report.unpacking, [{
      name,
      uid: Deno.uid(),
      user: report.unpacking[0].user,
      path: temp,
      image: "/images/x.sqfs",
      startedAt: "2026-01-02T03:04:05.000Z",
      mountedSteps: 1,
    }]);
    assert.deepEqual(report.mounted, [{ name, uid: Deno.uid(), path: live }]);
    const table = await cli(["status", ...config]);
    assert.match(table.stdout, new RegExp(`unpacking, 1 step\\(s\\) on a mount +${name} +/images/x\\.sqfs`));

    const gc = await cli(["gc", "--json", "--stale-after", "0", ...config]);
    assert.equal(gc.code, 0, gc.stderr);
    const removed = JSON.parse(gc.stdout).removedLeftovers;
    assert.ok(removed.includes(dead), "a dead step's mount point goes");
    assert.ok(!removed.includes(live) && !removed.includes(temp), "a live step's and a live unpack's stay");
    assert.ok((await listing(userDir)).includes(live.replace(/.*\//, "")));
  }
  const after = await status();
  assert.deepEqual([after.unpacking, after.mounted], [[], []], "nothing held: nothing in progress");
});
