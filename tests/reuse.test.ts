import assert from "node:assert/strict";
import {
  CLI,
  cli,
  IS_ROOT,
  isRunning,
  listing,
  makeImage,
  manifest,
  NOBODY,
  processes,
  run,
  settings,
  sleep,
  slowImage,
  tempDir,
} from "./helpers.ts";

const OURS = (name: string) => name.startsWith(".pyxis_cache_");

Deno.test("reuse() unpacks cold, then reuses warm: same path, the image's content", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const files = { "etc/os-release": "ID=pyxis-test\n", "bin/tool": 100_000, "usr/share/a/b/c.txt": "deep\n" };
  await makeImage(`${dir}/img.sqfs`, files);
  const config = settings(`${dir}/cache`);
  const cold = await cli(["reuse", "--image", `${dir}/img.sqfs`, "--json", ...config]);
  assert.equal(cold.code, 0, cold.stderr);
  const first = JSON.parse(cold.stdout);
  assert.equal(first.created, true);
  assert.equal(first.lock, `${first.path}/.pyxis_cache_lock`);
  assert.match(first.path, new RegExp(`^${dir}/cache/\\d+/${first.name}$`));
  assert.equal(typeof first.seconds, "number");

  await Deno.utime(first.path, 0, 0);
  const warm = await cli(["reuse", "--image", `${dir}/img.sqfs`, ...config]);
  assert.equal(warm.code, 0, warm.stderr);
  assert.equal(warm.stdout, `${first.path}\n`);
  assert.ok((await Deno.stat(first.path)).mtime!.getTime() > Date.now() - 60_000, "a reuse refreshes the mtime");

  const reference = `${dir}/reference`;
  await run("unsquashfs", ["-no-progress", "-quiet", "-d", reference, `${dir}/img.sqfs`]);
  assert.deepEqual(await manifest(first.path, OURS), await manifest(reference));
  assert.equal(await Deno.readTextFile(`${first.path}/etc/os-release`), "ID=pyxis-test\n");
});

Deno.test("reuse() unpacks once for 8 concurrent cold callers", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await makeImage(`${dir}/img.sqfs`, { "payload": 8_000_000, "etc/os-release": "ID=x\n" });
  const config = settings(`${dir}/cache`);
  const results = await Promise.all(
    Array.from({ length: 8 }, () => cli(["reuse", "--image", `${dir}/img.sqfs`, "--json", ...config])),
  );
  assert.deepEqual(results.map((r) => r.code), Array(8).fill(0), results.map((r) => r.stderr).join(""));
  const outputs = results.map((r) => JSON.parse(r.stdout));
  assert.equal(outputs.filter((o) => o.created).length, 1);
  assert.equal(new Set(outputs.map((o) => o.path)).size, 1);
  assert.deepEqual((await listing(`${dir}/cache/${Deno.uid()}`)).filter((n) => n.startsWith(".pyxis_cache_tmp")), []);
});

/**
 * Kills `reuse` while its unsquashfs unpacks `image` (as the caller, or as root for `uid`) and
 * checks that unsquashfs stops with it and that the next reuse clears the leftovers and succeeds.
 */
async function killMidUnpack(dir: string, image: string, slow: { copies: number; took: number }, uid?: number) {
  const { copies, took } = slow;
  const config = settings(`${dir}/cache`);
  const owner = uid === undefined ? [] : ["--uid", String(uid), "--gid", String(uid)];
  const name = (await cli(["key", "--image", image, ...owner.slice(0, 2)])).stdout.trim();
  const userDir = `${dir}/cache/${uid ?? Deno.uid()}`;

  const args = ["reuse", "--image", image, ...owner, ...config];
  const child = new Deno.Command(CLI, { args, stdout: "null", stderr: "null" }).spawn();
  // Kill once its unsquashfs runs and the tree is growing (a directory's link count grows with its subdirectories).
  let temp = "", pid = 0;
  const links = () => Deno.lstatSync(temp).nlink ?? 0;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(5)) {
    temp = (await listing(userDir)).find((n) => n.startsWith(".pyxis_cache_tmp.")) ?? "";
    if (!temp) continue;
    temp = `${userDir}/${temp}`;
    pid ||= (await processes("unsquashfs", temp))[0] ?? 0;
    if (pid && links() > 3) break;
  }
  assert.ok(pid && await isRunning(pid), "no unsquashfs was unpacking within 60 s");
  child.kill("SIGKILL");
  await child.status;
  // The kernel sends the parent-death signal before the killed reuse can be waited for: from here on,
  // unsquashfs may finish at most the directory it was making.
  const atKill = links() - 2;
  assert.ok(atKill < copies - 1, `the kill landed after the unpack (${atKill} of ${copies} directories made)`);

  const killed = performance.now();
  while (await isRunning(pid) && performance.now() - killed < 2_000) await sleep(5);
  const lived = Math.round(performance.now() - killed);
  assert.ok(!await isRunning(pid), "an orphaned unsquashfs was still unpacking 2 s after reuse was killed");
  const atEnd = links() - 2;
  console.log(`  unsquashfs of ${copies} directories takes ${took.toFixed(2)} s here; killed with ${atKill} made, \
it was gone ${lived} ms later with ${atEnd} made`);
  assert.ok(atEnd <= atKill + 1, `unsquashfs went on after reuse was killed: from ${atKill} to ${atEnd} directories`);
  await sleep(200);
  assert.equal(links() - 2, atEnd, "the tree still grows after unsquashfs ended");
  assert.match(name, /^pyxis_cache_u\d+_/);
  assert.ok(!(await listing(userDir)).includes(name));

  const again = await cli(["reuse", "--image", image, "--json", ...owner, ...config]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).created, true);
  assert.equal((await listing(`${userDir}/${name}`)).length, copies + 1, "the whole image, and the lock file");

  // Holding the creation lock, it knows the killed call's temporary directory is dead: removed at once.
  assert.deepEqual((await listing(userDir)).filter((n) => /^\.pyxis_cache_(tmp|trash)\./.test(n)), []);
}

Deno.test("reuse() killed mid-unpack: its unsquashfs stops at once, nothing under the entry name; the next one clears it away and succeeds", async (t) => {
  await using tmp = await tempDir();
  // An unpack of 1.5 s or more on this machine, so that the kill lands inside it.
  const slow = await slowImage(`${tmp.path}/slow.sqfs`, 1.5);
  await t.step("the caller's own", () => killMidUnpack(tmp.path, `${tmp.path}/slow.sqfs`, slow));
  // The switch to the job user changes credentials, which clears a parent-death signal set before it.
  await t.step({
    name: "root's, for another user",
    ignore: !IS_ROOT,
    fn: () => killMidUnpack(tmp.path, `${tmp.path}/slow.sqfs`, slow, NOBODY.uid),
  });
});

Deno.test("reuse() refuses bad images with one line, exit 1, and changes nothing", async (t) => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await makeImage(`${dir}/good.sqfs`, { "f": 300_000 });
  const good = await Deno.readFile(`${dir}/good.sqfs`);
  await Deno.writeFile(`${dir}/truncated.sqfs`, good.subarray(0, 4096));
  await Deno.writeTextFile(`${dir}/notes.txt`, "not an image\n");
  await Deno.writeFile(`${dir}/secret.sqfs`, good, { mode: 0o600 });
  const config = settings(`${dir}/cache`);
  await cli(["reuse", "--image", `${dir}/good.sqfs`, ...config]);
  const cases: [string, string, RegExp, { uid: number; gid: number }?][] = [
    ["a missing image", `${dir}/missing.sqfs`, /image not found/],
    ["a directory", dir, /image is not a regular file/],
    ["a non-squashfs file", `${dir}/notes.txt`, /not a squashfs image/],
    ["a truncated squashfs", `${dir}/truncated.sqfs`, /truncated squashfs image/],
  ];
  if (IS_ROOT) {
    cases.push([
      "an image the user cannot read",
      `${dir}/secret.sqfs`,
      /cannot read image: .*permission denied/,
      NOBODY,
    ]);
  } else console.log("skipped: 'an image the user cannot read' needs root to run as another user");
  if (IS_ROOT) await cli(["prepare", "--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid), ...config]);
  const prepared = await manifest(`${dir}/cache`);
  for (const [name, image, message, as] of cases) {
    await t.step(name, async () => {
      const result = await cli(["reuse", "--image", image, ...config], { as });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`^pyxis-cache: reuse: ${message.source}.*\\n$`));
      assert.equal(result.stdout, "");
      assert.deepEqual(await manifest(`${dir}/cache`), prepared);
    });
  }
});

Deno.test({
  name: "reuse --uid as root unpacks as the job user: every file theirs, the lock and record too",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await makeImage(`${dir}/img.sqfs`, { "etc/os-release": "ID=x\n", "opt/app/bin": 1000 });
    const config = settings(`${dir}/cache`);
    const result = await cli([
      "reuse",
      "--image",
      `${dir}/img.sqfs`,
      "--uid",
      "65534",
      "--gid",
      "65534",
      "--json",
      ...config,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const { path } = JSON.parse(result.stdout);
    const owners = new Set<string>();
    const walk = async (p: string) => {
      const info = await Deno.lstat(p);
      owners.add(`${info.uid}:${info.gid}`);
      if (info.isDirectory) { for await (const e of Deno.readDir(p)) await walk(`${p}/${e.name}`); }
    };
    await walk(path);
    assert.deepEqual([...owners], ["65534:65534"]);
    const userDir = await Deno.stat(`${dir}/cache/65534`);
    assert.deepEqual([userDir.uid, userDir.mode! & 0o777], [65534, 0o700]);
    assert.deepEqual((await listing(`${dir}/cache`)).filter((n) => n.startsWith(".")), [], "no staging left");
  },
});
