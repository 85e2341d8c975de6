import assert from "node:assert/strict";
import { CacheError } from "../lib/os/errors.ts";
import { identify } from "../lib/images/identity.ts";
import { cli, makeImage, tempDir } from "./helpers.ts";

const nameOf = async (image: string, uid = 1000, cwd = "/") => (await identify(image, uid, cwd)).name;

Deno.test("identify() keeps one name for one file, across calls and processes", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await makeImage(`${dir}/a.sqfs`, { "etc/os-release": "ID=a\n" });
  const name = await nameOf(`${dir}/a.sqfs`);
  assert.match(name, /^pyxis_cache_u1000_[0-9a-f]{20}$/);
  assert.equal(await nameOf(`${dir}/a.sqfs`), name);
  const printed = await cli(["key", "--image", `${dir}/a.sqfs`, "--uid", "1000"]);
  assert.deepEqual([printed.code, printed.stdout, printed.stderr], [0, `${name}\n`, ""]);
});

Deno.test("identify() gives a new name when the file changes", async (t) => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const image = `${dir}/img.sqfs`;
  // Two images of the same size: only their content differs.
  await makeImage(`${dir}/x.sqfs`, { "data": "x".repeat(5000) });
  await makeImage(`${dir}/y.sqfs`, { "data": "y".repeat(5000) });
  const [x, y] = [await Deno.readFile(`${dir}/x.sqfs`), await Deno.readFile(`${dir}/y.sqfs`)];
  assert.equal(x.length, y.length);

  await t.step("replaced at the same path (new inode)", async () => {
    await Deno.writeFile(image, x);
    const before = await nameOf(image);
    await Deno.writeFile(`${image}.new`, y);
    await Deno.rename(`${image}.new`, image);
    assert.notEqual(await nameOf(image), before);
  });
  await t.step("rewritten in place, same size, mtime put back", async () => {
    await Deno.writeFile(image, x);
    const { mtime, atime, ino, size } = await Deno.stat(image);
    const before = await nameOf(image);
    const file = await Deno.open(image, { write: true });
    await file.write(y);
    file.close();
    await Deno.utime(image, atime!, mtime!);
    const after = await Deno.stat(image);
    assert.deepEqual([after.ino, after.size, after.mtime], [ino, size, mtime], "the same inode, size and mtime");
    assert.notEqual(await nameOf(image), before);
  });
});

Deno.test("identify() resolves paths: relative against the cwd, a symlink shares its target's name", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await makeImage(`${dir}/a.sqfs`, { "f": "a" });
  await Deno.symlink(`${dir}/a.sqfs`, `${dir}/link.sqfs`);
  const name = await nameOf(`${dir}/a.sqfs`);
  assert.equal(await nameOf("a.sqfs", 1000, dir), name);
  assert.equal(await nameOf(`${dir}/link.sqfs`), name);
  const relative = await cli(["key", "--image", "link.sqfs", "--uid", "1000"], { cwd: dir });
  assert.equal(relative.stdout, `${name}\n`);
  assert.equal((await identify("link.sqfs", 1000, dir)).path, `${dir}/a.sqfs`);
});

Deno.test("identify() never shares a name between uids", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await makeImage(`${dir}/a.sqfs`, { "f": "a" });
  const [a, b] = [await nameOf(`${dir}/a.sqfs`, 1000), await nameOf(`${dir}/a.sqfs`, 1001)];
  assert.match(a, /_u1000_/);
  assert.match(b, /_u1001_/);
  assert.notEqual(a.slice(-20), b.slice(-20));
});

Deno.test("identify() refuses what is not a whole squashfs image", async (t) => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await makeImage(`${dir}/good.sqfs`, { "big": 200_000 });
  const good = await Deno.readFile(`${dir}/good.sqfs`);
  await Deno.writeFile(`${dir}/truncated.sqfs`, good.subarray(0, 100_000));
  const corrupt = good.slice();
  corrupt[22] = 3; // block_log no longer matches block_size
  await Deno.writeFile(`${dir}/corrupt.sqfs`, corrupt);
  await Deno.writeTextFile(`${dir}/text.sqfs`, "hsq".repeat(100));
  await Deno.writeFile(`${dir}/empty.sqfs`, new Uint8Array());
  const cases: [string, string, RegExp][] = [
    ["missing", `${dir}/none.sqfs`, /image not found: .*none\.sqfs/],
    ["a directory", dir, /image is not a regular file/],
    ["empty", `${dir}/empty.sqfs`, /not a squashfs image/],
    ["not squashfs", `${dir}/text.sqfs`, /not a squashfs image/],
    ["truncated", `${dir}/truncated.sqfs`, /truncated squashfs image: .*\(100000 of \d+ bytes\)/],
    ["corrupt superblock", `${dir}/corrupt.sqfs`, /corrupt squashfs superblock/],
  ];
  for (const [name, image, message] of cases) {
    await t.step(
      name,
      () => assert.rejects(identify(image, 1000, "/"), (e) => e instanceof CacheError && message.test(e.message)),
    );
  }
});
