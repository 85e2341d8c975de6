import assert from "node:assert/strict";
import { identify } from "../lib/images/identity.ts";
import { unpackedBytes } from "../lib/images/squashfs.ts";
import { treeBytes } from "../lib/images/unpack.ts";
import { run, tempDir } from "./helpers.ts";

async function pack(tree: string, image: string, ...options: string[]) {
  const made = await run("mksquashfs", [tree, image, "-noappend", "-quiet", "-no-progress", ...options]);
  assert.equal(made.code, 0, made.stderr);
}

Deno.test("unpackedBytes() reads what a tree will take from the image's inode table", async (t) => {
  await using tmp = await tempDir();
  const tree = `${tmp.path}/tree`;
  await Deno.mkdir(`${tree}/d/e`, { recursive: true });
  await Deno.writeTextFile(`${tree}/a`, "a\n");
  await Deno.writeFile(`${tree}/d/b`, new Uint8Array(4097));
  await Deno.writeFile(`${tree}/d/e/big`, crypto.getRandomValues(new Uint8Array(65536)).map((b, i) => b ^ i));
  await Deno.writeTextFile(`${tree}/empty`, "");
  await Deno.symlink("a", `${tree}/short`);
  await Deno.symlink("x".repeat(80), `${tree}/long`);
  await Deno.link(`${tree}/a`, `${tree}/hard`);
  // 3 directories (the top, d, d/e), a: 1 block (its hard link counts once), b: 2, big: 16, the long symlink: 1.
  const expected = (3 + 1 + 2 + 16 + 1) * 4096;
  const cases: [string, string[]][] = [
    ["gzip (the default)", []],
    ["gzip with small blocks and fragments in use", ["-b", "4096"]],
    ["uncompressed metadata", ["-noI", "-noD", "-noF"]],
    ["extended inodes (xattrs)", ["-xattrs"]],
  ];
  for (const [name, options] of cases) {
    await t.step(name, async () => {
      await pack(tree, `${tmp.path}/image.sqfs`, ...options);
      assert.equal(await unpackedBytes(await identify(`${tmp.path}/image.sqfs`, 0, "/")), expected);
    });
  }
  await t.step("a compressor Deno cannot inflate: unknown, so the tree is walked", async () => {
    await pack(tree, `${tmp.path}/xz.sqfs`, "-comp", "xz");
    assert.equal(await unpackedBytes(await identify(`${tmp.path}/xz.sqfs`, 0, "/")), undefined);
  });
});

Deno.test("unpackedBytes() agrees with a walk of the unpacked tree", async () => {
  await using tmp = await tempDir();
  const tree = `${tmp.path}/tree`;
  for (let d = 0; d < 20; d++) {
    await Deno.mkdir(`${tree}/dir${d}/sub`, { recursive: true });
    for (let f = 0; f < 25; f++) {
      await Deno.writeFile(`${tree}/dir${d}/sub/f${f}`, new Uint8Array((d * 7919 + f * 104729) % 50000));
    }
  }
  await pack(tree, `${tmp.path}/image.sqfs`);
  await run("unsquashfs", ["-no-progress", "-quiet", "-d", `${tmp.path}/out`, `${tmp.path}/image.sqfs`]);
  const estimate = (await unpackedBytes(await identify(`${tmp.path}/image.sqfs`, 0, "/")))!;
  const walked = treeBytes(`${tmp.path}/out`);
  assert.ok(Math.abs(estimate - walked) / walked < 0.05, `estimate ${estimate} vs walked ${walked}`);
});
