import assert from "node:assert/strict";
import { cli, ROOT } from "./helpers.ts";

Deno.test("every command answers --help on stdout with exit 0", async (t) => {
  for (const command of ["reuse", "gc", "status", "key", "prepare", "step", "release"]) {
    await t.step(command, async () => {
      const result = await cli([command, "--help"]);
      assert.equal(result.code, 0);
      assert.match(result.stdout, new RegExp(`^pyxis-cache ${command}: .*\\n\\nUsage: pyxis-cache ${command}`));
      assert.equal(result.stderr, "");
    });
  }
  await t.step("the command itself", async () => {
    const result = await cli(["--help"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /reuse .*\n.*gc /s);
  });
});

Deno.test("usage mistakes are one line on stderr and exit 2", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["no command", [], /Usage: pyxis-cache <command>/],
    ["unknown command", ["frobnicate"], /^pyxis-cache: unknown command: frobnicate/],
    ["unknown option", ["reuse", "--imagine", "x"], /^pyxis-cache: reuse: .*--imagine/],
    ["missing --image", ["key"], /^pyxis-cache: key: --image is required\n$/],
    ["bad --uid", ["key", "--image", "x", "--uid", "-3"], /--uid/],
    ["stray argument", ["status", "extra"], /^pyxis-cache: status: .*extra/],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, async () => {
      const result = await cli(args);
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, "");
    });
  }
});

const SHARED_CONTRACT = `${ROOT}/../shared/CONTRACT.md`;
Deno.test({
  name: "docs/contract.md is the shared contract, word for word below its note",
  // A clone has no shared folder beside it: nothing to compare with.
  ignore: !(() => {
    try {
      return Deno.statSync(SHARED_CONTRACT).isFile;
    } catch {
      return false;
    }
  })(),
  fn() {
    const ours = Deno.readTextFileSync(`${ROOT}/docs/contract.md`);
    assert.match(ours, /^> This page mirrors the shared contract/);
    assert.equal(ours.slice(ours.indexOf("\n\n") + 2), Deno.readTextFileSync(SHARED_CONTRACT));
  },
});
