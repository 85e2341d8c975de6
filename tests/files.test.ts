import assert from "node:assert/strict";
import { scanEntries, validMeta } from "../lib/store/entries.ts";
import { openPath, readSmall, removeTree, walkTree } from "../lib/os/files.ts";
import { lockExclusive } from "../lib/store/lock.ts";
import { LIBC_PATHS, nameText } from "../lib/os/libc.ts";
import { IS_ROOT, NOBODY, ROOT, run, tempDir } from "./helpers.ts";

/** A chain of `levels` nested directories under `dir` (by a process that can mkdir relative to its cwd: Deno cannot). */
async function deepChain(dir: string, levels: number): Promise<void> {
  const made = await run("/usr/bin/python3", [
    "-c",
    "import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(int(sys.argv[2])): os.mkdir('d'); os.chdir('d')",
    dir,
    String(levels),
  ]);
  assert.equal(made.code, 0, made.stderr);
}

Deno.test("removeTree removes a tree 16,000 directories deep (Deno.remove overflows its stack)", async () => {
  await using tmp = await tempDir();
  const top = `${tmp.path}/trash`;
  Deno.mkdirSync(top);
  await deepChain(top, 16_000);
  await removeTree(top);
  assert.deepEqual([...Deno.readDirSync(tmp.path)], []);
});

Deno.test("removeTree never follows a symlink, removes FIFOs and names that are not UTF-8", async () => {
  await using tmp = await tempDir();
  const keep = `${tmp.path}/keep`;
  Deno.mkdirSync(`${keep}/dir`, { recursive: true });
  Deno.writeTextFileSync(`${keep}/dir/file`, "keep");
  const top = `${tmp.path}/trash`;
  Deno.mkdirSync(`${top}/a/b`, { recursive: true });
  Deno.symlinkSync(keep, `${top}/a/link`);
  Deno.symlinkSync(`${keep}/dir`, `${top}/a/b/link`);
  const made = await run("bash", ["-c", `cd '${top}/a' && mkfifo fifo && mkdir $'\\xff' && touch $'\\xff/\\xfe'`]);
  assert.equal(made.code, 0, made.stderr);
  await removeTree(top);
  assert.deepEqual([...Deno.readDirSync(tmp.path)].map((e) => e.name), ["keep"]);
  assert.equal(Deno.readTextFileSync(`${keep}/dir/file`), "keep");
  await removeTree(`${tmp.path}/missing`); // nothing there: no error
});

Deno.test("openPath refuses a symlink, a FIFO (without waiting) and the wrong kind", async () => {
  await using tmp = await tempDir();
  Deno.writeTextFileSync(`${tmp.path}/file`, "x");
  Deno.symlinkSync(`${tmp.path}/file`, `${tmp.path}/link`);
  Deno.mkdirSync(`${tmp.path}/dir`);
  assert.equal((await run("mkfifo", [`${tmp.path}/fifo`])).code, 0);
  assert.equal(openPath(`${tmp.path}/link`), "missing");
  assert.equal(openPath(`${tmp.path}/fifo`), "missing");
  assert.equal(openPath(`${tmp.path}/dir`), "missing");
  assert.equal(openPath(`${tmp.path}/file`, "directory"), "missing");
  assert.equal(openPath(`${tmp.path}/nothing`), "missing");
  const file = openPath(`${tmp.path}/file`);
  assert.ok(typeof file === "object" && file.info.isFile);
  assert.ok(file.tryLock(true));
  file.close();
});

Deno.test({
  name: "readSmall as root: a regular file up to the limit; not a symlink, a FIFO, a directory, or another uid's file",
  ignore: !IS_ROOT,
  fn: async () => {
    await using tmp = await tempDir();
    Deno.writeTextFileSync(`${tmp.path}/file`, "0123456789");
    Deno.chownSync(`${tmp.path}/file`, NOBODY.uid, NOBODY.gid);
    Deno.symlinkSync(`${tmp.path}/file`, `${tmp.path}/link`);
    Deno.mkdirSync(`${tmp.path}/dir`);
    assert.equal((await run("mkfifo", [`${tmp.path}/fifo`])).code, 0);
    assert.equal(readSmall(`${tmp.path}/file`, 4), "0123");
    assert.equal(readSmall(`${tmp.path}/file`, 64, { owner: NOBODY.uid }), "0123456789");
    assert.equal(readSmall(`${tmp.path}/file`, 64, { owner: 0 }), undefined);
    for (const name of ["link", "fifo", "dir", "nothing"]) {
      assert.equal(readSmall(`${tmp.path}/${name}`, 64), undefined);
    }
  },
});

Deno.test("openPath of a file another process holds a write lease on is busy at once, not after the lease-break time", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/lock`;
  Deno.writeTextFileSync(path, "");
  const holder = new Deno.Command("/usr/bin/python3", {
    args: [
      "-c",
      "import fcntl,os,signal,sys,time; signal.signal(signal.SIGIO, signal.SIG_IGN); " +
      "fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK); " +
      "print('leased', flush=True); time.sleep(60)",
      path,
    ],
    stdout: "piped",
    stdin: "null",
  }).spawn();
  try {
    const reader = holder.stdout.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /leased/);
    reader.releaseLock();
    const started = performance.now();
    assert.equal(openPath(path), "busy");
    assert.ok(performance.now() - started < 5_000, "the open waited for the lease");
  } finally {
    holder.kill();
    await holder.status;
    await holder.stdout.cancel().catch(() => {});
  }
});

Deno.test("walkTree sees a name that is not UTF-8 beside the name it decodes to", async () => {
  await using tmp = await tempDir();
  const made = await run("bash", [
    "-c",
    `cd '${tmp.path}' && mkdir $'\\xff' $'\\xef\\xbf\\xbd' && touch $'\\xff/a' $'\\xef\\xbf\\xbd/b'`,
  ]);
  assert.equal(made.code, 0, made.stderr);
  const seen: string[] = [];
  walkTree(tmp.path, (_dir, name, info) => seen.push(`${JSON.stringify([...name.subarray(0, -1)])} ${info.isFile}`));
  assert.deepEqual(seen.sort(), ["[239,191,189] false", "[255] false", "[97] true", "[98] true"]);
  assert.equal(nameText(new Uint8Array([0x61, 0])), "a");
});

Deno.test("a record is trusted only with a sane size, image and time", () => {
  const good = { image: "/img/a.sqfs", bytes: 4096, createdAt: "2026-12-01T00:00:00.000Z", unpackSeconds: 1.5 };
  assert.deepEqual(validMeta(good), good);
  for (
    const bad of [
      { ...good, bytes: Infinity },
      { ...good, bytes: -5 },
      { ...good, bytes: 1.5 },
      { ...good, bytes: 2 ** 60 },
      { ...good, bytes: "5" },
      { ...good, image: "/x\u001b[2J" },
      { ...good, image: "/x\nroot 0 forged" },
      { ...good, image: "/x\u202e" },
      { ...good, image: "/".repeat(5000) },
      { ...good, image: 5 },
      { ...good, createdAt: "yesterday" },
      null,
      [],
    ]
  ) {
    assert.equal(validMeta(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(validMeta({ ...good, unpackSeconds: -1 })?.unpackSeconds, 0);
});

Deno.test("an entry last used in the future counts as least recently used, and is reported", async () => {
  await using tmp = await tempDir();
  const uid = Deno.uid();
  const dir = `${tmp.path}/base/${uid}`;
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const future = `${dir}/pyxis_cache_u${uid}_00000000000000000001`;
  const now = `${dir}/pyxis_cache_u${uid}_00000000000000000002`;
  Deno.mkdirSync(future);
  Deno.mkdirSync(now);
  Deno.utimeSync(future, new Date("2100-01-01"), new Date("2100-01-01"));
  const scan = await scanEntries(`${tmp.path}/base`);
  const byName = new Map(scan.entries.map((e) => [e.path, e.lastUsed.getTime()]));
  assert.equal(byName.get(future), 0);
  assert.ok(byName.get(now)! > Date.now() - 60_000);
  assert.deepEqual(scan.problems.map((p) => p.includes("last used in the future") && p.includes(future)), [true]);
});

Deno.test("statx's device and inode are lstat's", async () => {
  await using tmp = await tempDir();
  Deno.writeTextFileSync(`${tmp.path}/f`, "x");
  const opened = openPath(`${tmp.path}/f`);
  assert.ok(typeof opened === "object");
  const seen = Deno.lstatSync(`${tmp.path}/f`);
  assert.deepEqual([opened.info.dev, opened.info.ino], [seen.dev, BigInt(seen.ino!)]);
  opened.close();
});

Deno.test("the launcher's --allow-ffi grants the C libraries lib/os/libc.ts tries, in its order", async () => {
  const launcher = await Deno.readTextFile(`${ROOT}/bin/pyxis-cache`);
  const granted = /--allow-ffi="([^"]*)"/.exec(launcher)?.[1];
  assert.ok(granted, 'bin/pyxis-cache has no --allow-ffi="..."');
  // bash's $HOSTTYPE names the machine as Deno.build.arch does (x86_64, aarch64).
  assert.deepEqual(granted.replaceAll("$HOSTTYPE", Deno.build.arch).split(","), LIBC_PATHS);
});

Deno.test("lockExclusive waits for the holder, refuses a FIFO at once, and creates what is missing", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/create.lock`;
  const first = await lockExclusive(path);
  let second: { close(): void } | undefined;
  const waiting = lockExclusive(path).then((lock) => second = lock);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(second, undefined, "the second took a held lock");
  first.close();
  await waiting;
  second!.close();
  assert.equal((await run("mkfifo", [`${tmp.path}/fifo`])).code, 0);
  await assert.rejects(() => lockExclusive(`${tmp.path}/fifo`), /not a regular file/);
});

Deno.test("walkTree refuses a tree deeper than it walks, with one line", async () => {
  await using tmp = await tempDir();
  await deepChain(tmp.path, 600);
  assert.throws(() => walkTree(tmp.path, () => {}), /^Error: more than 512 directory levels$/);
  await removeTree(`${tmp.path}/d`);
});

/** The first line a child writes, its newline dropped; whatever came, if the child ended first. */
async function firstLine(chunks: AsyncIterator<string>): Promise<string> {
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await chunks.next();
    if (done) return text;
    text += value;
  }
  return text.slice(0, text.indexOf("\n"));
}

/** A tree of `width` directories, each holding directories and files two levels down, and a chain 100 levels deep. */
async function bushyTree(dir: string, width: number): Promise<void> {
  const made = await run("/usr/bin/python3", [
    "-c",
    `import os,sys
top, width = sys.argv[1], int(sys.argv[2])
for i in range(width):
    for j in range(4):
        leaf = os.path.join(top, f"d{i}", f"e{j}")
        os.makedirs(leaf)
        for k in range(4): open(os.path.join(leaf, f"f{k}"), "w").close()
os.chdir(top)
for _ in range(100): os.mkdir("c"); os.chdir("c")`,
    dir,
    String(width),
  ]);
  assert.equal(made.code, 0, made.stderr);
}

Deno.test("removeTree by four processes at once on one tree: each ends without error (two collectors take one trash)", async () => {
  await using tmp = await tempDir();
  const remover = `import { removeTree } from ${JSON.stringify(`${ROOT}/lib/os/files.ts`)};
console.log("ready");
await Deno.stdin.read(new Uint8Array(1));
const started = performance.timeOrigin + performance.now();
await removeTree(Deno.args[0]);
console.log(JSON.stringify([started, performance.timeOrigin + performance.now()]));`;
  // Grown until the removals really overlapped in time, however fast this machine removes.
  let overlapped = 0;
  for (let width = 50, round = 0; overlapped < 3 && round < 12; width = Math.min(width * 2, 3200), round++) {
    const top = `${tmp.path}/trash`;
    Deno.mkdirSync(top);
    await bushyTree(top, width);
    const removers = Array.from({ length: 4 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", remover, top],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn());
    const lines = removers.map((child) => child.stdout.pipeThrough(new TextDecoderStream()).values());
    // None starts before all have loaded their code and said so.
    for (const line of lines) assert.equal(await firstLine(line), "ready");
    for (const child of removers) await child.stdin.close();
    const spans: [number, number][] = [];
    for (const [i, child] of removers.entries()) {
      const stderr = await new Response(child.stderr).text();
      assert.equal((await child.status).code, 0, stderr);
      spans.push(JSON.parse(await firstLine(lines[i]!)));
      await lines[i]!.return?.();
    }
    assert.deepEqual([...Deno.readDirSync(tmp.path)], []);
    if (spans.some(([s, e], i) => spans.some(([s2, e2], j) => i !== j && s < e2 && s2 < e))) overlapped++;
  }
  assert.equal(overlapped, 3, "the removals never overlapped");
});

/** Ends `child` with SIGTERM unless it has ended by itself (kill() then throws "already terminated"); its status. */
async function stop(child: Deno.ChildProcess): Promise<Deno.CommandStatus> {
  try {
    child.kill();
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
  return await child.status;
}

Deno.test("removeTree of a tree somebody keeps adding names to ends with one error, not a loop for ever", async () => {
  await using tmp = await tempDir();
  const top = `${tmp.path}/trash`;
  // A pass that finds the tree empty wins outright (the attacker was not scheduled for all of it): then again,
  // until one does not. Each pass lists the whole top first, and a name added after that listing keeps the top
  // non-empty; with a head start of 5,000 names the first pass is long enough for the attacker to be scheduled
  // however busy the machine is, and each pass after it has at least what was added during the one before.
  let heldOff = false;
  for (let round = 0; !heldOff && round < 10; round++) {
    Deno.mkdirSync(top);
    // The attacker adds new names as fast as it can, so that the passes keep finding the top non-empty. Once the
    // top is gone it waits to be killed (ending by itself, it would race the kill below).
    const attacker = new Deno.Command("/usr/bin/python3", {
      args: [
        "-c",
        "import os,signal,sys\nos.chdir(sys.argv[1]); n = 0\n" +
        "while True:\n    try: os.mkdir(f'n{n}'); n += 1\n    except FileNotFoundError: break\n" +
        "    if n == 5000: print('adding', flush=True)\n" +
        "signal.pause()",
        top,
      ],
      stdout: "piped",
    }).spawn();
    const lines = attacker.stdout.pipeThrough(new TextDecoderStream()).values();
    let out = "";
    let attackerEnd: Deno.CommandStatus;
    try {
      assert.equal(await firstLine(lines), "adding");
      const remover = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          "--ext=ts",
          `import { removeTree } from ${JSON.stringify(`${ROOT}/lib/os/files.ts`)};
await removeTree(Deno.args[0], 2).then(() => console.log("removed"), (error) => console.log(String(error)));`,
          top,
        ],
        stdout: "piped",
      }).spawn();
      // The removal gives up 2 s after it began (REMOVE_SECONDS by default); without a bound it never ends.
      const timer = setTimeout(() => remover.kill("SIGKILL"), 120_000);
      out = new TextDecoder().decode((await remover.output()).stdout).trim();
      clearTimeout(timer);
      assert.notEqual(out, "", "removeTree was still emptying the tree after 120 s");
      if (out !== "removed") {
        assert.equal(
          out,
          "Error: not removed within 2 s: names kept appearing in it, or it is larger than that allows",
        );
        heldOff = true;
      }
    } finally {
      attackerEnd = await stop(attacker);
      await lines.return?.();
    }
    // The attacker ends by itself only when the tree is gone under it: when removeTree won the round.
    if (attackerEnd.signal !== "SIGTERM") {
      assert.ok(
        attackerEnd.success && out === "removed",
        `the attacker ended by itself (${JSON.stringify(attackerEnd)}) and removeTree said ${JSON.stringify(out)}`,
      );
    }
    await removeTree(top);
  }
  assert.ok(heldOff, "the attacker never kept the tree non-empty");
  assert.deepEqual([...Deno.readDirSync(tmp.path)], []);
});
