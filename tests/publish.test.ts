import assert from "node:assert/strict";
import { parseConfig } from "../lib/config/config.ts";
import { readMeta } from "../lib/store/entries.ts";
import { makingRoom } from "../lib/cache/room.ts";
import { reuse } from "../lib/cache/reuse.ts";
import { NoSpaceError } from "../lib/os/errors.ts";
import type { UsageSource } from "../lib/os/usage.ts";
import { IS_ROOT, makeImage, tempDir } from "./helpers.ts";

Deno.test("makingRoom() asks for twice the room of the last try, also when it starts from none (an import)", async () => {
  await using tmp = await tempDir();
  const base = `${tmp.path}/cache`;
  const config = parseConfig([`container_cache_data_path=${base}`, "container_cache_gc_low=80"], "test");
  if (!IS_ROOT) await Deno.mkdir(`${base}/${Deno.uid()}`, { recursive: true, mode: 0o700 });
  const made: { name: string; path: string; bytes: number }[] = [];
  for (let i = 0; i < 8; i++) {
    await makeImage(`${tmp.path}/img${i}.sqfs`, { payload: 20_000, "etc/os-release": `ID=${i}\n` });
    const entry = await reuse(config, {
      image: `${tmp.path}/img${i}.sqfs`,
      usage: () => Promise.resolve({ percent: 0, usedBytes: 0, availableBytes: 1 }),
    });
    await Deno.utime(entry.path, 1_000_000 + i * 1000, 1_000_000 + i * 1000);
    made.push({ ...entry, bytes: readMeta(entry.path)!.bytes });
  }
  // The filesystem holds exactly the eight entries: full.
  const capacity = made.reduce((sum, e) => sum + e.bytes, 0);
  assert.equal(new Set(made.map((e) => e.bytes)).size, 1, "the entries are of one size");
  const unit = made[0]!.bytes;
  const usage: UsageSource = async () => {
    let used = 0;
    for (const e of made) if (await Deno.lstat(e.path).then(() => true, () => false)) used += e.bytes;
    return { percent: (used * 100) / capacity, usedBytes: used, availableBytes: capacity - used };
  };
  // What is being made needs the room of three entries. Down to the low watermark (80%)
  // frees two: not enough; twice that room frees two more, and the third try fits.
  let tries = 0;
  const attempt = async () => {
    tries++;
    if ((await usage(base)).availableBytes < 3 * unit) throw new NoSpaceError("full");
    return "made";
  };
  assert.equal(await makingRoom(config, 0, attempt, () => Promise.resolve(), usage), "made");
  assert.equal(tries, 3);
  const left = [];
  for (const e of made) if (await Deno.lstat(e.path).then(() => true, () => false)) left.push(e.name);
  assert.deepEqual(left, made.slice(4).map((e) => e.name), "the four least recently used went, no more");
});
