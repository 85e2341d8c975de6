import assert from "node:assert/strict";
import { ROOT, run, tempDir } from "./helpers.ts";

const LINT = `${ROOT}/tests/lint-bats.sh`;

/** Runs tests/lint-bats.sh on one sample .bats file holding `body`. */
async function lint(body: string) {
  await using tmp = await tempDir();
  const file = `${tmp.path}/sample.bats`;
  await Deno.writeTextFile(file, body);
  const out = await run("bash", [LINT, file]);
  return { ...out, file };
}

Deno.test("bats ignores a mid-test '! cmd' that succeeds (what tests/lint-bats.sh is for)", async () => {
  await using tmp = await tempDir();
  await Deno.writeTextFile(
    `${tmp.path}/premise.bats`,
    `@test "ignored" {\n  ! true\n  true\n}\n@test "counted" {\n  ! true || false\n  true\n}\n`,
  );
  const out = await run("bats", ["--tap", `${tmp.path}/premise.bats`]);
  assert.match(out.stdout, /^ok 1 ignored$/m);
  assert.match(out.stdout, /^not ok 2 counted$/m);
});

Deno.test("tests/lint-bats.sh names each '! cmd' that cannot fail, file:line", async (t) => {
  const bad: [string, string, number][] = [
    ["a mid-test negation", `@test "x" {\n  ! pgrep foo\n  true\n}\n`, 2],
    ["after &&", `@test "x" {\n  run true\n  [ -e /x ] && ! grep -q y /z\n  echo done\n}\n`, 3],
    ["after ;", `@test "x" {\n  true; ! grep -q y /z\n  echo done\n}\n`, 2],
    [
      "inside an if (the if's status is not the test's)",
      `@test "x" {\n  if true; then\n    ! false\n  fi\n  true\n}\n`,
      3,
    ],
    ["one line continued without ||", `@test "x" {\n  ! grep -q \\\n    y /z\n  true\n}\n`, 2],
    ["in a brace group", `@test "x" {\n  { ! true; }\n  true\n}\n`, 2],
    ["in a loop's body, after its condition", `@test "x" {\n  while ! a; do ! false; done\n  true\n}\n`, 2],
    ["in a helper function", `helper() {\n  ! kill -0 1\n  echo gone\n}\n`, 2],
    ["after a comment line that quotes", `@test "x" {\n  # it's not 'a string\n  ! ls\n  true\n}\n`, 3],
    ["after a heredoc", `@test "x" {\n  cat <<'EOF' >f\n! in text\nEOF\n  ! ls\n  true\n}\n`, 5],
  ];
  for (const [name, body, line] of bad) {
    await t.step(name, async () => {
      const out = await lint(body);
      assert.equal(out.code, 1, out.stderr);
      const lines = out.stdout.trim().split("\n");
      assert.equal(lines.length, 1, out.stdout);
      assert.match(lines[0]!, new RegExp(`^${out.file}:${line}: a mid-test '! cmd' cannot fail`));
      assert.equal(out.stderr, "");
    });
  }
});

Deno.test("tests/lint-bats.sh lets through every '!' that can fail or is not a negated command", async (t) => {
  const good: [string, string][] = [
    ["run !", `@test "x" {\n  run ! pgrep foo\n  true\n}\n`],
    ["! cmd || false", `@test "x" {\n  ! pgrep foo || false\n  true\n}\n`],
    ["! cmd || skip", `@test "x" {\n  ! test -w /x || skip "writable"\n  true\n}\n`],
    ["|| false on the continued line", `@test "x" {\n  ! grep -q \\\n    y /z || false\n  true\n}\n`],
    ["the test's last command", `@test "x" {\n  true\n  ! pgrep foo\n}\n`],
    ["the last command, blank lines and a comment before }", `@test "x" {\n  ! pgrep foo\n\n  # done\n}\n`],
    ["conditions", `@test "x" {\n  if ! a; then b; fi\n  while ! a; do b; done\n  until ! a; do b; done\n  true\n}\n`],
    [
      "tests and operators",
      `@test "x" {\n  [ ! -e x ]\n  [[ ! -e x && $a != b ]]\n  test ! -e x\n  ((! 0))\n  true\n}\n`,
    ],
    ["indirect expansion", `@test "x" {\n  echo "\${!name}" \${!arr[@]}\n  true\n}\n`],
    ["quoted text", `@test "x" {\n  run bash -c 'a; ! b'\n  echo "x && ! y"\n  true\n}\n`],
    ["a heredoc's body", `@test "x" {\n  cat >f <<EOF\n  ! not code\nEOF\n  true\n}\n`],
    ["a subshell", `@test "x" {\n  ( ! false )\n  true\n}\n`],
    ["a comment", `@test "x" {\n  # ! pgrep foo\n  true  # ; ! x\n}\n`],
    [
      "a negation after || or && in a condition, or inside [[ ]]",
      `@test "x" {\n  until [[ -s a ]] || ! kill -0 1; do b; done\n  if [[ -s a && ! -e b ]]; then c; fi\n  true\n}\n`,
    ],
  ];
  for (const [name, body] of good) {
    await t.step(name, async () => {
      const out = await lint(body);
      assert.deepEqual([out.code, out.stdout, out.stderr], [0, "", ""]);
    });
  }
});

Deno.test("every .bats and .bash file under tests/ passes tests/lint-bats.sh", async () => {
  const out = await run("bash", [LINT]);
  assert.deepEqual([out.code, out.stdout, out.stderr], [0, "", ""]);
});
