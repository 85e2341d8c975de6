import assert from "node:assert/strict";
import { statfsUsage } from "../lib/os/usage.ts";
import { run, tempDir } from "./helpers.ts";

Deno.test("statfsUsage() counts what df counts (used, available, and the percent of their sum)", async () => {
  await using tmp = await tempDir();
  // A file of its own makes the filesystem's use something other than zero.
  Deno.writeFileSync(`${tmp.path}/data`, new Uint8Array(1 << 20));
  const df = await run("df", ["-B1", "--output=used,avail", tmp.path]);
  assert.equal(df.code, 0, df.stderr);
  const usage = await statfsUsage(tmp.path);
  const [used, avail] = df.stdout.trim().split("\n")[1]!.trim().split(/\s+/).map(Number) as [number, number];
  // Other processes write to the same filesystem meanwhile: within 64 MiB.
  assert.ok(Math.abs(usage.usedBytes - used) < 64 << 20, `used ${usage.usedBytes} vs df ${used}`);
  assert.ok(Math.abs(usage.availableBytes - avail) < 64 << 20, `available ${usage.availableBytes} vs df ${avail}`);
  const percent = (usage.usedBytes * 100) / (usage.usedBytes + usage.availableBytes);
  assert.equal(usage.percent, percent);
  assert.ok(usage.usedBytes > 0 && usage.availableBytes >= 0);
});
