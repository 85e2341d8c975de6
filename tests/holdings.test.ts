import assert from "node:assert/strict";
import { collect, UserLimitError } from "../lib/cache/collect.ts";
import { parseConfig } from "../lib/config/config.ts";
import { readMeta } from "../lib/store/entries.ts";
import { reuse } from "../lib/cache/reuse.ts";
import { status } from "../lib/reports/status.ts";
import type { UsageSource } from "../lib/os/usage.ts";
import { IS_ROOT, makeImage, NOBODY, tempDir } from "./helpers.ts";

const A = { uid: 0, gid: 0 };
const B = NOBODY;

interface Made {
  uid: number;
  name: string;
  path: string;
  bytes: number;
}

/** An entry of a distinct image for `owner`, last used at `when` (unix seconds). */
async function entry(dir: string, base: string, owner: { uid: number; gid: number }, tag: string, when: number) {
  const config = parseConfig([`container_cache_data_path=${base}`], "test");
  await makeImage(`${dir}/${tag}.sqfs`, { payload: 200_000, "etc/os-release": `ID=${tag}\n` });
  await Deno.chmod(`${dir}/${tag}.sqfs`, 0o644);
  const made = await reuse(config, {
    image: `${dir}/${tag}.sqfs`,
    ...owner,
    usage: () => Promise.resolve({ percent: 0, usedBytes: 0, availableBytes: 1 }),
  });
  await Deno.utime(made.path, when, when);
  return { uid: owner.uid, name: made.name, path: made.path, bytes: readMeta(made.path)!.bytes };
}

/** Use is what the entries still there recorded, against a fixed capacity: exact arithmetic. */
function usageOf(made: Made[], capacity: number): UsageSource {
  return async () => {
    let used = 0;
    for (const e of made) if (await Deno.lstat(e.path).then(() => true, () => false)) used += e.bytes;
    return { percent: (used * 100) / capacity, usedBytes: used, availableBytes: capacity - used };
  };
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

Deno.test({
  name: "collect() with container_cache_user_limit: the user above it loses their own oldest entries, nobody else's",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = await Deno.realPath(tmp.path);
    await Deno.chmod(dir, 0o755);
    const base = `${dir}/cache`;
    // B's entries are the oldest: by LRU alone they would go first.
    const b = [await entry(dir, base, B, "b0", 1_000)];
    const a = [];
    for (let i = 0; i < 4; i++) a.push(await entry(dir, base, A, `a${i}`, 10_000 + i * 1000));
    const heldByA = a.reduce((sum, e) => sum + e.bytes, 0);
    // A may hold 40% of the capacity: its two newest entries and their creation locks (a block each).
    const limit = a[2]!.bytes + a[3]!.bytes + 16 * 1024;
    const capacity = Math.ceil((limit * 100) / 40);
    const config = parseConfig([
      `container_cache_data_path=${base}`,
      "container_cache_gc_high=99",
      "container_cache_gc_low=98",
      "container_cache_user_limit=40",
    ], "t");
    const usage = usageOf([...a, ...b], capacity);

    const before = await status(config, usage);
    const rowA = before.users!.find((u) => u.uid === A.uid)!;
    assert.equal(rowA.entryBytes, heldByA);
    assert.equal(rowA.limitBytes, Math.floor((capacity * 40) / 100));
    assert.equal(before.userLimit, 40);

    const result = await collect(config, { usage });
    // Above the limit by about two entries: A's two oldest go, in that order, though B's is older.
    assert.deepEqual(result.evicted.map((e) => e.name), [a[0]!.name, a[1]!.name]);
    for (const e of [...b, a[2]!, a[3]!]) assert.ok(await exists(e.path), `${e.name} was kept`);
    assert.deepEqual(result.overLimit, []);
    const after = await status(config, usage);
    assert.equal(after.users!.find((u) => u.uid === A.uid)!.entryBytes, a[2]!.bytes + a[3]!.bytes);
    assert.equal(after.users!.find((u) => u.uid === B.uid)!.entryBytes, b[0]!.bytes);
  },
});

Deno.test({
  name: "a create that cannot fit within container_cache_user_limit fails with one line naming it; " +
    "one that can evicts only its user's oldest",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = await Deno.realPath(tmp.path);
    await Deno.chmod(dir, 0o755);
    const base = `${dir}/cache`;
    const b = await entry(dir, base, B, "b0", 1_000);
    const a0 = await entry(dir, base, A, "a0", 10_000);
    const a1 = await entry(dir, base, A, "a1", 11_000);
    // A may hold two entries' worth (and their creation locks): a third makes room by evicting A's oldest.
    const limit = a0.bytes + a1.bytes + 16 * 1024;
    const capacity = Math.ceil((limit * 100) / 30);
    const config = parseConfig([`container_cache_data_path=${base}`, "container_cache_user_limit=30"], "t");
    const made = [b, a0, a1];
    const usage = usageOf(made, capacity);
    await makeImage(`${dir}/a2.sqfs`, { payload: 200_000, "etc/os-release": "ID=a2\n" });
    const a2 = await reuse(config, { image: `${dir}/a2.sqfs`, ...A, usage });
    assert.ok(a2.created);
    assert.ok(!(await exists(a0.path)), "A's oldest entry made room");
    assert.ok(await exists(a1.path) && await exists(b.path), "A's newer entry and B's stay");

    // An image larger than the whole limit: one line naming the limit; nothing of anyone's goes.
    await makeImage(`${dir}/big.sqfs`, { payload: 2 * limit, "etc/os-release": "ID=big\n" });
    const error = await reuse(config, { image: `${dir}/big.sqfs`, ...A, usage }).then(() => undefined, (e) => e);
    assert.ok(error instanceof UserLimitError, String(error));
    assert.match(
      error.message,
      /^cannot create pyxis_cache_u0_[0-9a-f]{20}: uid 0 holds .* container_cache_user_limit=30%/,
    );
    assert.ok(!error.message.includes("\n"));
    assert.ok(await exists(b.path), "B's entry is untouched");
    const names = Array.from(Deno.readDirSync(`${base}/0`), (e) => e.name);
    assert.deepEqual(names.filter((n) => n.startsWith(".pyxis_cache_tmp.")), [], "no temporary directory left");
  },
});

Deno.test({
  name: "every byte under <base>/<uid> counts to that user; a name that is not the cache's goes once stale",
  ignore: !IS_ROOT,
  async fn() {
    await using tmp = await tempDir();
    const dir = await Deno.realPath(tmp.path);
    await Deno.chmod(dir, 0o755);
    const base = `${dir}/cache`;
    const b = await entry(dir, base, B, "b0", 1_000);
    const userDir = `${base}/${B.uid}`;
    // What a user may write there: a file of their own, a directory of them, hard links counted once.
    const hog = new Uint8Array(1 << 20).fill(7);
    await Deno.writeFile(`${userDir}/hog`, hog);
    await Deno.mkdir(`${userDir}/stuff`);
    await Deno.writeFile(`${userDir}/stuff/more`, hog);
    await Deno.link(`${userDir}/stuff/more`, `${userDir}/stuff/again`);
    const config = parseConfig([`container_cache_data_path=${base}`], "t");
    const s = await status(config);
    const row = s.users!.find((u) => u.uid === B.uid)!;
    assert.equal(row.entries, 1);
    assert.equal(row.entryBytes, b.bytes);
    assert.ok(row.otherBytes >= 2 << 20 && row.otherBytes < 3 << 20, `other: ${row.otherBytes}`);
    assert.equal(row.bytes, row.entryBytes + row.otherBytes);
    assert.equal(row.limitBytes, null);

    const young = await collect(config, {});
    assert.deepEqual(young.removedLeftovers, [], "younger than --stale-after: kept");
    const stale = await collect(config, { staleAfterSeconds: 0 });
    assert.deepEqual(stale.removedLeftovers.sort(), [`${userDir}/hog`, `${userDir}/stuff`]);
    assert.ok(await exists(b.path), "the entry stays");
    assert.ok(await exists(`${userDir}/.pyxis_cache_create.${b.name}`), "its creation lock stays");
    // What is left besides the entry is the cache's own: its creation lock, which holds the creator's record.
    const after = (await status(config)).users!.find((u) => u.uid === B.uid)!;
    assert.equal(after.otherBytes, (await Deno.lstat(`${userDir}/.pyxis_cache_create.${b.name}`)).blocks! * 512);
  },
});
