import assert from "node:assert/strict";
import { CacheError } from "../lib/os/errors.ts";
import { digestName, isDaemonImage, isReference, parseReference } from "../lib/registry/reference.ts";
import { tempDir } from "./helpers.ts";

const D = `sha256:${"ab".repeat(32)}`;

Deno.test("parseReference() reads what pyxis and enroot accept", async (t) => {
  const hub = "registry-1.docker.io";
  const cases: [string, [string | undefined, string, string, string, string | undefined]][] = [
    // text → [user, registry, repository, tag, digest]
    ["ubuntu", [undefined, hub, "library/ubuntu", "latest", undefined]],
    ["ubuntu:22.04", [undefined, hub, "library/ubuntu", "22.04", undefined]],
    ["nvidia/cuda:12.2.0-base", [undefined, hub, "nvidia/cuda", "12.2.0-base", undefined]],
    ["nvcr.io#nvidia/pytorch:24.01-py3", [undefined, "nvcr.io", "nvidia/pytorch", "24.01-py3", undefined]],
    ["$oauthtoken@nvcr.io#nvidia/pytorch", ["$oauthtoken", "nvcr.io", "nvidia/pytorch", "latest", undefined]],
    ["docker://nvcr.io/nvidia/pytorch:24.01-py3", [undefined, "nvcr.io", "nvidia/pytorch", "24.01-py3", undefined]],
    ["localhost:5000/app", [undefined, "localhost:5000", "app", "latest", undefined]],
    ["127.0.0.1:5000#team/app@" + D, [undefined, "127.0.0.1:5000", "team/app", "latest", D]],
    ["docker://alice@ghcr.io/org/app:1@" + D, ["alice", "ghcr.io", "org/app", "1", D]],
  ];
  for (const [text, expected] of cases) {
    await t.step(text, () => {
      const r = parseReference(text);
      assert.deepEqual([r.user, r.registry, r.repository, r.tag, r.digest], expected);
      assert.equal(r.uri, `docker://${text.replace(/^docker:\/\//, "")}`);
    });
  }
});

Deno.test("parseReference() refuses what enroot would, in one line", async (t) => {
  const cases: [string, RegExp][] = [
    ["Ubuntu", /image name is lowercase/],
    ["nvcr.io#", /image name/],
    ["#app", /bad registry/],
    ["@nvcr.io#app", /empty user/],
    ["app@sha256:abc", /digest is sha256: and 64/],
    ["app:bad tag", /bad tag/],
  ];
  for (const [text, message] of cases) {
    await t.step(text, () => {
      assert.throws(() => parseReference(text), (e) => e instanceof CacheError && message.test(e.message));
    });
  }
});

Deno.test("isReference(): pyxis's rule ('/' or '.' is a file), plus a file in the cwd and the squashfs suffixes", async () => {
  await using tmp = await tempDir();
  await Deno.writeTextFile(`${tmp.path}/image`, "");
  await Deno.mkdir(`${tmp.path}/ubuntu`);
  const cases: [string, boolean][] = [
    ["/images/app.sqsh", false],
    ["./app.sqsh", false],
    ["../app", false],
    ["app.sqsh", false],
    ["app.squashfs", false],
    ["image", false], // a regular file in the cwd
    ["ubuntu", true], // a directory is no image: the registry's ubuntu
    ["nvcr.io#nvidia/pytorch:24.01-py3", true],
    ["docker://./x", true],
  ];
  for (const [image, expected] of cases) assert.equal(isReference(image, tmp.path), expected, image);
  assert.throws(() => isReference("oci://app", tmp.path), /unsupported image scheme/);
  // A daemon's image: enroot imports it for a step of its own (step.ts); it names no entry.
  for (const image of ["dockerd://app", "podman://app:1"]) {
    assert.equal(isDaemonImage(image), true, image);
    assert.throws(() => isReference(image, tmp.path), /has no digest to cache it by/);
  }
  assert.equal(isDaemonImage("docker://app"), false);
});

Deno.test("digestName(): per uid, per digest", async () => {
  const other = `sha256:${"cd".repeat(32)}`;
  assert.match(await digestName(1000, D), /^pyxis_cache_u1000_[0-9a-f]{20}$/);
  assert.equal(await digestName(1000, D), await digestName(1000, D));
  assert.notEqual(await digestName(1000, D), await digestName(1001, D));
  assert.notEqual(await digestName(1000, D), await digestName(1000, other));
});
