/**
 * Registry images end to end through the real command: a real registry on 127.0.0.1,
 * images built with umoci and pushed with skopeo, imported by enroot 4.1.2.
 */
import assert from "node:assert/strict";
import { knownPath } from "../lib/layout.ts";
import { CLI, cli, IS_ROOT, listing, NOBODY, run, settings, tempDir } from "./helpers.ts";
import { enrootDir, enrootEnv, type Registry, startProxy, startRegistry } from "./registry.ts";

const TOOLS = ["docker-registry", "umoci", "skopeo", "curl"];
const missing = (await Promise.all(TOOLS.map(async (t) => (await run("sh", ["-c", `command -v ${t}`])).code ? t : "")))
  .filter(Boolean);
if (missing.length) console.error(`SKIPPING registry cases: ${missing.join(", ")} not installed (make bootstrap-test)`);
const ignore = missing.length > 0 || (await enrootDir()) === null;
const env = ignore ? {} : await enrootEnv();

interface Reuse {
  code: number;
  stdout: string;
  stderr: string;
  json: { name: string; path: string; created: boolean; digest?: string; image: string };
}

async function reuse(config: string[], image: string, as?: { uid: number; gid: number }): Promise<Reuse> {
  const result = await cli(["reuse", "--image", image, "--json", ...config], { env, as });
  return { ...result, json: result.code === 0 ? JSON.parse(result.stdout) : undefined };
}

async function key(image: string, extra: string[] = []): Promise<string> {
  const result = await cli(["key", "--image", image, ...extra], { env });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

/** What a user's directory holds besides records of references: entries and temporaries. */
async function held(dir: string): Promise<string[]> {
  return (await listing(dir)).filter((n) => /^(pyxis_cache_u|\.pyxis_cache_(tmp|trash)\.)/.test(n));
}

/** A test against its own registry (wanting `credentials` when given), in a temporary directory. */
function registryTest(
  name: string,
  fn: (dir: string, registry: Registry) => Promise<void>,
  options: { credentials?: string; rootOnly?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: ignore || (options.rootOnly === true && !IS_ROOT),
    async fn() {
      await using tmp = await tempDir();
      await using registry = await startRegistry(`${tmp.path}/registry`, options.credentials);
      await fn(tmp.path, registry);
    },
  });
}

registryTest(
  "reuse of a tag: cold imports it as the image, warm reuses it; key and status name its digest",
  async (dir, registry) => {
    const digest = await registry.push("test/app:1", { "etc/marker": "one" });
    const ref = `${registry.address}#test/app:1`;
    const config = settings(`${dir}/cache`);
    const cold = await reuse(config, ref);
    assert.equal(cold.code, 0, cold.stderr);
    assert.equal(cold.json.created, true);
    assert.equal(cold.json.digest, digest);
    assert.equal(cold.json.image, ref);
    assert.equal(await Deno.readTextFile(`${cold.json.path}/etc/marker`), "one\n");
    assert.ok((await Deno.lstat(`${cold.json.path}/bin/sh`)).isSymlink);
    const fetched = await registry.blobFetches();

    const warm = await reuse(config, ref);
    assert.equal(warm.code, 0, warm.stderr);
    assert.deepEqual([warm.json.created, warm.json.path], [false, cold.json.path]);
    assert.equal(await registry.blobFetches(), fetched, "a warm start fetches nothing");
    // Two references to one digest, one entry: Docker's form of the same image.
    const docker = await reuse(config, `docker://${registry.address}/test/app:1`);
    assert.deepEqual([docker.json.created, docker.json.path], [false, cold.json.path]);

    assert.equal(await key(ref), cold.json.name.replace(/_u\d+_/, `_u${Deno.uid()}_`));
    const status = JSON.parse((await cli(["status", "--json", ...config])).stdout);
    assert.deepEqual(
      status.entries.map((e: { name: string; image: string; digest: string }) => [e.name, e.image, e.digest]),
      [[cold.json.name, ref, digest]],
    );
    assert.deepEqual(await held(`${dir}/cache/${Deno.uid()}`), [cold.json.name], "the import left nothing");
  },
);

registryTest(
  "a tag pushed again with other content: the known digest serves within the interval; after it, a new entry",
  async (dir, registry) => {
    const ref = `${registry.address}#test/app:latest`;
    await registry.push("test/app:latest", { "etc/marker": "one" });
    const hour = settings(`${dir}/cache`, { container_cache_registry_interval: 3600 });
    const first = await reuse(hour, ref);
    assert.equal(first.code, 0, first.stderr);
    const moved = await registry.push("test/app:latest", { "etc/marker": "two" });
    assert.notEqual(moved, first.json.digest);

    const within = await reuse(hour, ref);
    assert.deepEqual([within.json.created, within.json.path], [false, first.json.path], "not asked again yet");
    // key names what reuse uses: the node's record within the interval; without a configuration it asks.
    assert.equal(await key(ref, hour), first.json.name);
    assert.notEqual(await key(ref), first.json.name);

    const always = settings(`${dir}/cache`, { container_cache_registry_interval: 0 });
    const after = await reuse(always, ref);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.json.created, true);
    assert.equal(after.json.digest, moved);
    assert.notEqual(after.json.name, first.json.name);
    assert.equal(await Deno.readTextFile(`${after.json.path}/etc/marker`), "two\n");
    assert.equal(await key(ref), after.json.name);
    // The old entry is no longer refreshed: the collector's least recently used, first to go.
    await reuse(always, ref);
    const gc = JSON.parse((await cli(["gc", "--dry-run", "--all", "--json", ...always])).stdout);
    assert.deepEqual(gc.evicted.map((e: { name: string }) => e.name), [first.json.name, after.json.name]);
  },
);

registryTest(
  "a reference by digest asks no registry, and shares the entry of a tag with that digest",
  async (dir, registry) => {
    const digest = await registry.push("test/app:1", { "etc/marker": "one" });
    const config = settings(`${dir}/cache`, { container_cache_registry_interval: 0 });
    const byTag = await reuse(config, `${registry.address}#test/app:1`);
    assert.equal(byTag.code, 0, byTag.stderr);
    await registry.stop();
    for (
      const ref of [`${registry.address}#test/app@${digest}`, `docker://${registry.address}/test/app:1@${digest}`]
    ) {
      const byDigest = await reuse(config, ref);
      assert.equal(byDigest.code, 0, byDigest.stderr);
      assert.deepEqual([byDigest.json.created, byDigest.json.path, byDigest.stderr], [false, byTag.json.path, ""]);
      assert.equal(await key(ref), byTag.json.name);
    }
  },
);

registryTest("8 concurrent cold steps of a tag import it once", async (dir, registry) => {
  await registry.push("test/app:1", { "etc/marker": "one" });
  const config = settings(`${dir}/cache`);
  const before = await registry.blobFetches();
  const results = await Promise.all(
    Array.from({ length: 8 }, () => reuse(config, `${registry.address}#test/app:1`)),
  );
  assert.deepEqual(results.map((r) => r.code), Array(8).fill(0), results.map((r) => r.stderr).join(""));
  assert.equal(results.filter((r) => r.json.created).length, 1);
  assert.equal(new Set(results.map((r) => r.json.path)).size, 1);
  // One import: the image's config and its one layer, fetched once each.
  assert.equal(await registry.blobFetches() - before, 2);
  assert.deepEqual(await held(`${dir}/cache/${Deno.uid()}`), [results[0]!.json.name]);
});

registryTest(
  "registry stopped: a known reference still starts from its entry (said on stderr); an unknown one fails in one line",
  async (dir, registry) => {
    await registry.push("test/app:1", { "etc/marker": "one" });
    const config = settings(`${dir}/cache`, { container_cache_registry_interval: 0 });
    const known = await reuse(config, `${registry.address}#test/app:1`);
    assert.equal(known.code, 0, known.stderr);
    await registry.stop();

    const offline = await reuse(config, `${registry.address}#test/app:1`);
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual([offline.json.created, offline.json.path], [false, known.json.path]);
    assert.match(
      offline.stderr,
      /^pyxis-cache: reuse: warning: cannot reach registry 127\.0\.0\.1:\d+: .*: using sha256:[0-9a-f]{64}, confirmed \S+\n$/,
    );

    const userDir = `${dir}/cache/${Deno.uid()}`;
    const before = await held(userDir);
    const unknown = await reuse(config, `${registry.address}#test/other:1`);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /^pyxis-cache: reuse: failed to import docker image: \S+#test\/other:1: cannot reach registry 127\.0\.0\.1:\d+: .*; no digest of \S+#test\/other:1 is known on this node\n$/,
    );
    assert.equal(unknown.stdout, "");
    assert.deepEqual(await held(userDir), before);
  },
);

registryTest(
  "an import killed mid-layer leaves nothing trusted, and the next one succeeds; a layer cut off fails in one line",
  async (dir, registry) => {
    const digest = await registry.push("test/big:1", { "opt/blob": "@random:4000000" });
    await using proxy = startProxy(registry.address, "stall");
    const ref = `${proxy.address}#test/big:1`;
    const config = settings(`${dir}/cache`);
    const userDir = `${dir}/cache/${Deno.uid()}`;
    const name = await key(ref);
    assert.equal(name, await key(`${proxy.address}#test/big@${digest}`));

    // The step is killed as Slurm kills one: every process of it, enroot's curl included.
    const step = new Deno.Command("setsid", {
      args: [CLI, "reuse", "--image", ref, ...config],
      clearEnv: true,
      env,
      stdout: "null",
      stderr: "null",
    }).spawn();
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no layer half sent")), 120_000));
    await Promise.race([proxy.halfSent, timeout]);
    await run("kill", ["-KILL", "--", `-${step.pid}`]);
    await step.status;
    assert.ok(!(await listing(userDir)).includes(name), "no entry under its name");
    assert.ok((await held(userDir)).some((n) => n.startsWith(`.pyxis_cache_tmp.${name}.`)), "killed mid-import");
    const status = JSON.parse((await cli(["status", "--json", ...config])).stdout);
    assert.deepEqual(status.entries, []);

    proxy.mode = "pass";
    const next = await reuse(config, ref);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual([next.json.name, next.json.created], [name, true]);
    assert.equal((await Deno.stat(`${next.json.path}/opt/blob`)).size, 4_000_000);
    assert.deepEqual(await held(userDir), [name], "the dead import was cleared away");

    await registry.push("test/big:2", { "opt/blob": "@random:4000000" });
    await using dropping = startProxy(registry.address, "drop");
    const cut = await reuse(config, `${dropping.address}#test/big:2`);
    assert.equal(cut.code, 1);
    assert.match(
      cut.stderr,
      /^pyxis-cache: reuse: failed to import docker image: \S+#test\/big:2: enroot import docker:\/\/\S+#test\/big:2 failed: .*\n$/,
    );
    assert.deepEqual(await held(userDir), [name]);
  },
);

registryTest(
  "another user's import is never reused: each user imports their own, and their files are theirs",
  async (dir, registry) => {
    await registry.push("test/app:1", { "etc/marker": "one" });
    const ref = `${registry.address}#test/app:1`;
    const config = settings(`${dir}/cache`);
    const roots = await reuse(config, ref);
    assert.equal(roots.code, 0, roots.stderr);
    await cli(["prepare", "--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid), ...config]);
    const theirs = await reuse(config, ref, NOBODY);
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.equal(theirs.json.created, true, "imported again, as the other user");
    assert.notEqual(theirs.json.name, roots.json.name);
    assert.equal(theirs.json.digest, roots.json.digest);
    for (const path of ["", "/etc/marker", "/bin/busybox", "/.pyxis_cache_lock"]) {
      assert.equal((await Deno.lstat(`${theirs.json.path}${path}`)).uid, NOBODY.uid, path);
    }
    const forThem = await reuse([...config, "--uid", String(NOBODY.uid)], ref);
    assert.deepEqual([forThem.json.created, forThem.json.path], [false, theirs.json.path]);
  },
  { rootOnly: true },
);

/** Holds an exclusive flock(2) on `path` (util-linux flock) until the returned release is called. */
async function holdLock(path: string): Promise<{ release(): Promise<void> }> {
  const holder = new Deno.Command("flock", {
    args: ["-x", path, "-c", "echo held; cat >/dev/null"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value?.trim(), "held");
  return {
    async release() {
      await holder.stdin.close();
      await reader.cancel();
      assert.equal((await holder.status).code, 0);
    },
  };
}

/** Until a process waits in flock(2) for the file `path` (a "->" line of /proc/locks): the event, not a time. */
async function someoneWaitsFor(path: string, alive: Promise<unknown>): Promise<void> {
  const inode = String((await Deno.stat(path)).ino);
  let ended = false;
  alive.finally(() => ended = true);
  for (;;) {
    // Through cat: Deno reads /proc/locks only with --allow-all.
    const waiting = (await run("cat", ["/proc/locks"])).stdout.split("\n")
      .some((line) => / -> FLOCK /.test(line) && line.split(/\s+/).some((f) => f.split(":")[2] === inode));
    if (waiting) return;
    assert.ok(!ended, "the command ended before it waited for the lock");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/*
 * A user's directory gone while a registry reference's record lock is awaited (removed and
 * the lock file with it): when the lock comes free, the file is no longer the one at its
 * path, and the next open, O_CREAT in a directory that is not there, fails with ENOENT.
 */
registryTest(
  "the user's directory removed while its record lock is awaited: root makes it again and goes on; a user gets one line",
  async (dir, registry) => {
    await registry.push("test/app:1", { "etc/marker": "one" });
    const ref = `${registry.address}#test/app:1`;
    const config = settings(`${dir}/cache`, { container_cache_registry_interval: 0 });
    const ids = ["--uid", String(NOBODY.uid), "--gid", String(NOBODY.gid)];
    const userDir = `${dir}/cache/${NOBODY.uid}`;
    const lock = `${await knownPath(`${dir}/cache`, NOBODY.uid, ref)}.lock`;
    for (const as of ["root", "user"] as const) {
      assert.equal((await cli(["prepare", ...ids, ...config])).code, 0);
      await Deno.writeTextFile(lock, "");
      await Deno.chown(lock, NOBODY.uid, NOBODY.gid);
      const held = await holdLock(lock);
      // What the stub runs first for a cold step (reuse --no-wait): it identifies the image, creates nothing.
      const probe = ["reuse", "--image", ref, "--name-only", "--no-wait", ...config];
      const command = as === "root" ? cli([...probe, ...ids], { env }) : cli(probe, { env, as: NOBODY });
      await someoneWaitsFor(lock, command);
      await Deno.remove(userDir, { recursive: true });
      await held.release();
      const out = await command;
      if (as === "root") {
        assert.deepEqual([out.code, out.stderr], [0, ""]);
        assert.match(out.stdout, new RegExp(`^pyxis_cache_u${NOBODY.uid}_[0-9a-f]{20} absent registry\n$`));
        const made = await Deno.lstat(userDir);
        assert.deepEqual([made.isDirectory, made.uid, made.mode! & 0o7777], [true, NOBODY.uid, 0o700]);
      } else {
        assert.deepEqual([out.code, out.stdout], [1, ""]);
        assert.equal(
          out.stderr,
          `pyxis-cache: reuse: ${userDir} does not exist: run 'pyxis-cache prepare ${ids.join(" ")}' as root\n`,
        );
      }
    }
  },
  { rootOnly: true },
);

registryTest(
  "credentials as enroot reads them: .credentials in ENROOT_CONFIG_PATH; none or wrong ones fail in one line",
  async (dir, registry) => {
    await registry.push("private/app:1", { "etc/marker": "secret" });
    const ref = `${registry.address}#private/app:1`;
    const config = settings(`${dir}/cache`);
    const configDir = `${dir}/enroot-config`;
    await Deno.mkdir(configDir);
    const as = (credentials?: string) => {
      if (credentials !== undefined) Deno.writeTextFileSync(`${configDir}/.credentials`, credentials);
      return cli(["reuse", "--image", ref, ...config], { env: { ...env, ENROOT_CONFIG_PATH: configDir } });
    };
    const none = await as();
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^pyxis-cache: reuse: failed to import docker image: \S+: registry \S+ wants credentials: none for 127\.0\.0\.1 in .*\n$/,
    );
    const wrong = await as("machine 127.0.0.1 login alice password guess\n");
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /^pyxis-cache: reuse: failed to import docker image: \S+: registry \S+ refused access to \S+ \(401\)\n$/,
    );
    const right = await as("machine 127.0.0.1 login alice password s3cret\n");
    assert.equal(right.code, 0, right.stderr);
    assert.equal(await Deno.readTextFile(`${right.stdout.trim()}/etc/marker`), "secret\n");
  },
  { credentials: "alice:s3cret" },
);

registryTest(
  "root acting for a user never reads a .credentials that is a symlink to someone else's file",
  async (dir, registry) => {
    await registry.push("private/app:1", { "etc/marker": "secret" });
    // The user's enroot configuration points at a file of root's holding the registry's password.
    const configDir = `${dir}/nobody-config`;
    await Deno.mkdir(configDir);
    await Deno.writeTextFile(`${dir}/roots-netrc`, "machine 127.0.0.1 login alice password s3cret\n", {
      mode: 0o600,
    });
    await Deno.symlink(`${dir}/roots-netrc`, `${configDir}/.credentials`);
    await run("chown", ["-hR", `${NOBODY.uid}:${NOBODY.gid}`, configDir]);
    const result = await cli(
      ["key", "--image", `${registry.address}#private/app:1`, "--uid", String(NOBODY.uid)],
      { env: { ...env, ENROOT_CONFIG_PATH: configDir } },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /wants credentials: none for 127\.0\.0\.1/);
  },
  { rootOnly: true, credentials: "alice:s3cret" },
);

registryTest(
  "registry errors are one line, exit 1, and leave nothing: unknown tag, repository or host, no enroot",
  async (dir, registry) => {
    await registry.push("test/app:1", { "etc/marker": "one" });
    const config = settings(`${dir}/cache`);
    await cli(["prepare", "--uid", String(Deno.uid()), "--gid", String(Deno.gid()), ...config]);
    const cases: [string, RegExp][] = [
      [`${registry.address}#test/app:2`, /image not found in the registry: \S+\/test\/app:2/],
      [`${registry.address}#test/none:1`, /image not found in the registry: \S+\/test\/none:1/],
      [
        "no-such-host.invalid#test/app:1",
        /cannot reach registry no-such-host\.invalid: .*; no digest of .* is known/,
      ],
    ];
    for (const [image, message] of cases) {
      const result = await reuse(config, image);
      assert.equal(result.code, 1, image);
      assert.match(
        result.stderr,
        new RegExp(`^pyxis-cache: reuse: failed to import docker image: ${image}: ${message.source}.*\\n$`),
      );
      assert.deepEqual(await held(`${dir}/cache/${Deno.uid()}`), []);
    }
    const noEnroot = await cli(["reuse", "--image", `${registry.address}#test/app:1`, ...config], {
      env: { ...env, PATH: "/usr/bin:/bin" },
    });
    assert.equal(noEnroot.code, 1);
    assert.match(
      noEnroot.stderr,
      /^pyxis-cache: reuse: failed to import docker image: \S+: enroot not found in PATH=\/usr\/bin:\/bin .*\n$/,
    );
    assert.deepEqual(await held(`${dir}/cache/${Deno.uid()}`), []);
  },
);

Deno.test("gc removes records of references nobody has started for 30 days, and keeps the others", async () => {
  await using tmp = await tempDir();
  const config = settings(`${tmp.path}/cache`);
  const me = { uid: String(Deno.uid()), gid: String(Deno.gid()) };
  if (IS_ROOT) await cli(["prepare", "--uid", me.uid, "--gid", me.gid, ...config]);
  else await Deno.mkdir(`${tmp.path}/cache/${me.uid}`, { recursive: true, mode: 0o700 });
  const dir = `${tmp.path}/cache/${me.uid}`;
  const old = [".pyxis_cache_ref.00000000000000000001", ".pyxis_cache_ref.00000000000000000001.lock"];
  const fresh = [".pyxis_cache_ref.00000000000000000002", ".pyxis_cache_ref.00000000000000000002.lock"];
  const month = new Date(Date.now() - 31 * 86400_000);
  for (const name of [...old, ...fresh]) await Deno.writeTextFile(`${dir}/${name}`, "{}\n");
  for (const name of old) await Deno.utime(`${dir}/${name}`, month, month);
  const gc = await cli(["gc", "--json", ...config]);
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(JSON.parse(gc.stdout).removedLeftovers.sort(), old.map((n) => `${dir}/${n}`).sort());
  assert.deepEqual((await listing(dir)).filter((n) => n.startsWith(".pyxis_cache_ref.")), fresh);
});
