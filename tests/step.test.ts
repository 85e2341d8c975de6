import assert from "node:assert/strict";
import { cli, IS_ROOT, listing, makeImage, NOBODY, settings, tempDir } from "./helpers.ts";

const STEP = /^\.pyxis_cache_step_7\.3\.[0-9a-f]{6}$/;

Deno.test({
  name: "step unpacks an image for one step as the user and prints its name; release removes it",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const config = settings(`${dir}/cache`);
    await makeImage(`${dir}/image.sqfs`, { "etc/os-release": "step image\n", "bin/tool": "x" });
    await cli(["prepare", "--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid), ...config]);

    // A relative image resolves against the working directory, as the stub runs it.
    const step = await cli(["step", "--image", "image.sqfs", "--job", "7", "--step", "3", ...config], {
      cwd: dir,
      as: NOBODY,
    });
    assert.equal(step.stderr, "");
    assert.equal(step.code, 0);
    const name = step.stdout.trimEnd();
    assert.match(name, STEP);
    assert.equal(step.stdout, `${name}\n`, "one line, the name only");
    const rootfs = `${dir}/cache/${NOBODY.uid}/${name}/rootfs`;
    assert.equal(await Deno.readTextFile(`${rootfs}/etc/os-release`), "step image\n");
    const owner = await Deno.stat(`${rootfs}/bin/tool`);
    assert.deepEqual([owner.uid, owner.gid], [NOBODY.uid, NOBODY.gid]);
    // Outside the cache: no entry, nothing the collector would count as one.
    assert.deepEqual(await listing(`${dir}/cache/${NOBODY.uid}`), [name]);

    const released = await cli(["release", "--name", name, ...config], { as: NOBODY });
    assert.deepEqual([released.code, released.stdout, released.stderr], [0, "", ""]);
    assert.deepEqual(await listing(`${dir}/cache/${NOBODY.uid}`), []);
  },
});

Deno.test({
  name: "step without --image makes an empty step directory (enroot's paths in cache mode); release removes it",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const config = settings(`${dir}/cache`);
    await cli(["prepare", "--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid), ...config]);

    const step = await cli(["step", "--job", "7", "--step", "3", ...config], { cwd: dir, as: NOBODY });
    assert.deepEqual([step.code, step.stderr], [0, ""]);
    const name = step.stdout.trimEnd();
    assert.match(name, STEP);
    assert.equal(step.stdout, `${name}\n`, "one line, the name only");
    const path = `${dir}/cache/${NOBODY.uid}/${name}`;
    const made = await Deno.lstat(path);
    assert.ok(made.isDirectory);
    assert.deepEqual([made.uid, made.gid, made.mode! & 0o7777], [NOBODY.uid, NOBODY.gid, 0o700]);
    assert.deepEqual(await listing(path), [], "empty: no rootfs");

    // What enroot leaves there (a read-only directory among them) goes with it.
    const enroot = `${path}/enroot/runtime`;
    await Deno.mkdir(enroot, { recursive: true });
    await Deno.writeTextFile(`${enroot}/file`, "x");
    await Deno.chmod(enroot, 0o500);
    await Deno.chown(`${path}/enroot`, NOBODY.uid, NOBODY.gid);
    await Deno.chown(enroot, NOBODY.uid, NOBODY.gid);
    await Deno.chown(`${enroot}/file`, NOBODY.uid, NOBODY.gid);
    const released = await cli(["release", "--name", name, ...config], { as: NOBODY });
    assert.deepEqual([released.code, released.stdout, released.stderr], [0, "", ""]);
    assert.deepEqual(await listing(`${dir}/cache/${NOBODY.uid}`), []);
  },
});

Deno.test({
  name: "step refuses what is not a squashfs image with one line and leaves nothing behind",
  ignore: !IS_ROOT,
  async fn(t) {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const config = settings(`${dir}/cache`);
    await cli(["prepare", "--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid), ...config]);
    await Deno.writeTextFile(`${dir}/not-an-image`, "hello\n");
    await Deno.chmod(`${dir}/not-an-image`, 0o644);
    const cases: [string, string, RegExp][] = [
      ["a missing image", `${dir}/missing.sqfs`, /^pyxis-cache: step: image not found: .*missing\.sqfs\n$/],
      ["not squashfs", `${dir}/not-an-image`, /^pyxis-cache: step: not a squashfs image: .*not-an-image\n$/],
    ];
    for (const [name, image, message] of cases) {
      await t.step(name, async () => {
        const result = await cli(["step", "--image", image, "--job", "1", "--step", "0", ...config], { as: NOBODY });
        assert.equal(result.code, 1);
        assert.match(result.stderr, message);
        assert.equal(result.stdout, "");
        assert.deepEqual(await listing(`${dir}/cache/${NOBODY.uid}`), []);
      });
    }
  },
});

Deno.test({
  name: "release removes only a step's directory: any other name is a usage error and removes nothing",
  ignore: !IS_ROOT,
  async fn(t) {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const config = settings(`${dir}/cache`);
    await makeImage(`${dir}/image.sqfs`, { "etc/os-release": "entry\n" });
    await cli(["prepare", "--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid), ...config]);
    const entry = (await cli(["reuse", "--image", `${dir}/image.sqfs`, "--name-only", ...config], { as: NOBODY }))
      .stdout.trimEnd();
    assert.match(entry, new RegExp(`^pyxis_cache_u${NOBODY.uid}_[0-9a-f]{20}$`), "reuse --name-only");
    const before = await listing(`${dir}/cache/${NOBODY.uid}`);
    for (const name of [entry, "..", `../${NOBODY.uid}`, `.pyxis_cache_step_1.0.abcdef/..`, ""]) {
      await t.step(JSON.stringify(name), async () => {
        const result = await cli(["release", "--name", name, ...config], { as: NOBODY });
        assert.equal(result.code, 2);
        assert.match(result.stderr, /^pyxis-cache: release: --name: invalid value: .*\(not a step's name\)\n$/);
        assert.equal(result.stderr.trimEnd().split("\n").length, 1);
        assert.deepEqual(await listing(`${dir}/cache/${NOBODY.uid}`), before);
      });
    }
  },
});
