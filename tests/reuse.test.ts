import assert from "node:assert/strict";
import { cli, IS_ROOT, listing, makeImage, manifest, NOBODY, run, settings, tempDir } from "./helpers.ts";

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

Deno.test("reuse() killed mid-unpack leaves nothing under the entry name, and no unsquashfs running; the next one clears it away and succeeds", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const files: Record<string, number> = {};
  for (let i = 0; i < 40; i++) files[`data/file${i}`] = 4_000_000;
  await makeImage(`${dir}/big.sqfs`, files);
  const config = settings(`${dir}/cache`);
  const name = (await cli(["key", "--image", `${dir}/big.sqfs`])).stdout.trim();
  const userDir = `${dir}/cache/${Deno.uid()}`;

  const child = new Deno.Command("bin/pyxis-cache", {
    args: ["reuse", "--image", `${dir}/big.sqfs`, ...config],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Wait until the unpack has started writing, then kill it.
  for (let i = 0; i < 400 && !(await listing(userDir)).some((n) => n.startsWith(".pyxis_cache_tmp")); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill("SIGKILL");
  await child.status;
  assert.ok((await listing(userDir)).some((n) => n.startsWith(".pyxis_cache_tmp")), "killed mid-unpack");
  // Its unsquashfs, left writing its progress into a pipe nobody reads, dies of SIGPIPE.
  const orphans = async () => (await run("pgrep", ["-f", `^(/usr/bin/)?unsquashfs .*${userDir}/`])).code === 0;
  for (let i = 0; i < 100 && await orphans(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(!await orphans(), "an orphaned unsquashfs was still unpacking 2 s after reuse was killed");
  const temp = (await listing(userDir)).find((n) => n.startsWith(".pyxis_cache_tmp"));
  let written = 0;
  for (const name of await listing(`${userDir}/${temp}/data`)) {
    written += (await Deno.lstat(`${userDir}/${temp}/data/${name}`)).size;
  }
  assert.ok(written < 40 * 4_000_000, "the orphaned unsquashfs unpacked the whole image");
  assert.ok(!(await listing(userDir)).includes(name));

  const again = await cli(["reuse", "--image", `${dir}/big.sqfs`, "--json", ...config]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).created, true);
  assert.equal((await Deno.stat(`${userDir}/${name}/data/file39`)).size, 4_000_000);

  // Holding the creation lock, it knows the killed call's temporary directory is dead: removed at once.
  assert.deepEqual((await listing(userDir)).filter((n) => /^\.pyxis_cache_(tmp|trash)\./.test(n)), []);
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
