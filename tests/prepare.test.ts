import assert from "node:assert/strict";
import { cli, IS_ROOT, makeImage, NOBODY, settings, tempDir } from "./helpers.ts";

const ids = ["--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid)];

Deno.test({
  name: "prepare creates <base>/<uid> mode 0700 owned by the user, and repairs its mode",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const config = settings(`${dir}/cache`);
    const created = await cli(["prepare", ...ids, ...config]);
    assert.deepEqual([created.code, created.stdout], [0, `${dir}/cache/${NOBODY.uid}: created\n`]);
    const info = await Deno.stat(`${dir}/cache/${NOBODY.uid}`);
    assert.deepEqual([info.uid, info.gid, info.mode! & 0o7777], [NOBODY.uid, NOBODY.gid, 0o700]);
    const base = await Deno.stat(`${dir}/cache`);
    assert.deepEqual([base.uid, base.mode! & 0o022], [0, 0]);

    await Deno.chmod(`${dir}/cache/${NOBODY.uid}`, 0o755);
    const repaired = await cli(["prepare", ...ids, ...config]);
    assert.match(repaired.stdout, /repaired \(mode 755 -> 700\)/);
    assert.equal((await Deno.stat(`${dir}/cache/${NOBODY.uid}`)).mode! & 0o7777, 0o700);
  },
});

Deno.test({
  name: "prepare refuses what must not be trusted in place of <base>/<uid>",
  ignore: !IS_ROOT,
  async fn(t) {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const config = settings(`${dir}/cache`);
    await cli(["prepare", "--uid", "0", "--gid", "0", ...config]);
    await Deno.mkdir(`${dir}/elsewhere`);
    const cases: [string, () => Promise<void>, RegExp][] = [
      ["a file", () => Deno.writeTextFile(`${dir}/cache/${NOBODY.uid}`, ""), /is not a directory; refusing/],
      [
        "a symlink",
        () => Deno.symlink(`${dir}/elsewhere`, `${dir}/cache/${NOBODY.uid}`),
        /is not a directory; refusing/,
      ],
      ["another user's directory", async () => {
        await Deno.mkdir(`${dir}/cache/${NOBODY.uid}`);
        await Deno.chown(`${dir}/cache/${NOBODY.uid}`, 4242, 4242);
      }, /is owned by uid 4242, not 65534; refusing/],
    ];
    for (const [name, plant, message] of cases) {
      await t.step(name, async () => {
        await Deno.remove(`${dir}/cache/${NOBODY.uid}`, { recursive: true }).catch(() => {});
        await plant();
        const result = await cli(["prepare", ...ids, ...config]);
        assert.equal(result.code, 1);
        assert.match(result.stderr, message);
        assert.deepEqual(await Array.fromAsync(Deno.readDir(`${dir}/elsewhere`)), []);
      });
    }
    await t.step("a user may not prepare", async () => {
      const result = await cli(["prepare", ...ids, ...config], { as: NOBODY });
      assert.deepEqual([result.code, result.stderr], [1, "pyxis-cache: prepare: prepare must run as root\n"]);
    });
  },
});

Deno.test({
  name: "reuse as a user: needs a prepared directory, may not act for another uid",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await makeImage(`${dir}/img.sqfs`, { "f": "x" });
    const config = settings(`${dir}/cache`);
    await cli(["prepare", "--uid", "0", "--gid", "0", ...config]);
    const unprepared = await cli(["reuse", "--image", `${dir}/img.sqfs`, ...config], { as: NOBODY });
    assert.equal(unprepared.code, 1);
    assert.match(
      unprepared.stderr,
      /cache\/65534 does not exist: run 'pyxis-cache prepare --uid 65534 --gid 65534' as root/,
    );
    const other = await cli(["reuse", "--image", `${dir}/img.sqfs`, "--uid", "0", ...config], { as: NOBODY });
    assert.equal(other.code, 1);
    assert.match(other.stderr, /--uid 0: only root may act for another user/);

    await cli(["prepare", ...ids, ...config]);
    const reused = await cli(["reuse", "--image", `${dir}/img.sqfs`, "--json", ...config], { as: NOBODY });
    assert.equal(reused.code, 0, reused.stderr);
    assert.equal(JSON.parse(reused.stdout).uid, NOBODY.uid);
    assert.equal((await Deno.stat(`${JSON.parse(reused.stdout).path}/f`)).uid, NOBODY.uid);
    const others = await cli(["status", "--json", ...config], { as: NOBODY });
    assert.deepEqual(JSON.parse(others.stdout).entries.map((e: { uid: number }) => e.uid), [NOBODY.uid]);
  },
});

Deno.test({
  name: "16 concurrent prepares and first reuses on an empty <base>, 10 times over: none fails for coming second",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await makeImage(`${dir}/img.sqfs`, { "etc/os-release": "ID=x\n" });
    for (let round = 0; round < 10; round++) {
      const config = settings(`${dir}/cache${round}`);
      const results = await Promise.all(
        Array.from(
          { length: 16 },
          (_, i) =>
            i % 2
              ? cli(["prepare", ...ids, ...config])
              : cli(["reuse", "--image", `${dir}/img.sqfs`, ...ids, "--json", ...config]),
        ),
      );
      const failed = results.filter((r) => r.code !== 0).map((r) => r.stderr.trim());
      assert.deepEqual(failed, [], `round ${round}`);
      const reused = results.filter((_, i) => i % 2 === 0).map((r) => JSON.parse(r.stdout));
      assert.equal(reused.filter((r) => r.created).length, 1, "one unpack");
      assert.equal(new Set(reused.map((r) => r.path)).size, 1);
      const prepared = results.filter((_, i) => i % 2 === 1).map((r) => r.stdout);
      assert.ok(prepared.filter((out) => out.endsWith(": created\n")).length <= 1, prepared.join(""));
      const info = await Deno.lstat(`${dir}/cache${round}/${NOBODY.uid}`);
      assert.deepEqual([info.isDirectory, info.uid, info.gid, info.mode! & 0o7777], [
        true,
        ...Object.values(NOBODY),
        0o700,
      ]);
      const base = await Deno.lstat(`${dir}/cache${round}`);
      assert.deepEqual([base.uid, base.mode! & 0o7777], [0, 0o755]);
    }
  },
});
