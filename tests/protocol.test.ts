/**
 * One protocol between the command and the SPANK stub: what they share (entry and step
 * names, the hash's length, the lock file, the mount point's prefix, PATH, the words of
 * `reuse --no-wait`'s reply) is written once, in lib/layout.ts; spank-stub/layout.gen.h is
 * generated from it when the stub is built, and the stub spells none of it itself.
 */
import assert from "node:assert/strict";
import * as layout from "../lib/layout.ts";
import { ROOT, run, tempDir } from "./helpers.ts";

const STUB = `${ROOT}/spank-stub`;

Deno.test("the stub's constants, as built, are lib/layout.ts's", async () => {
  const made = await run("make", ["-s", "-C", STUB, "layout.gen.h"]);
  assert.equal(made.code, 0, made.stderr);
  await using tmp = await tempDir();
  await Deno.writeTextFile(
    `${tmp.path}/print.c`,
    `#include <stdio.h>
#include "layout.gen.h"
int main(void)
{
	static const char *const states[] = ENTRY_STATE_WORDS;
	static const char *const kinds[] = IMAGE_KIND_WORDS;
	printf("%s\\n%d\\n%s\\n%s\\n%s\\n%d\\n%s\\n", ENTRY_PREFIX, HASH_HEX, LOCK_FILE, MOUNT_PREFIX, STEP_PREFIX,
	       TAIL_ALNUM, PYXIS_CACHE_PATH);
	printf("%s %s %s %d %d %d\\n", states[ENTRY_READY], states[ENTRY_UNPACKING], states[ENTRY_ABSENT],
	       (int)(sizeof(states) / sizeof(states[0])), ENTRY_READY, ENTRY_ABSENT);
	printf("%s %s %d\\n", kinds[IMAGE_FILE], kinds[IMAGE_REGISTRY], (int)(sizeof(kinds) / sizeof(kinds[0])));
	return 0;
}
`,
  );
  const cc = await run("cc", ["-Wall", "-Werror", "-I", STUB, "-o", `${tmp.path}/print`, `${tmp.path}/print.c`]);
  assert.equal(cc.code, 0, cc.stderr);
  const printed = await run(`${tmp.path}/print`, []);
  assert.equal(
    printed.stdout,
    [
      layout.ENTRY_PREFIX,
      layout.HASH_HEX,
      layout.LOCK_FILE,
      layout.MOUNT_PREFIX,
      layout.STEP_PREFIX,
      layout.TAIL_ALNUM,
      layout.SAFE_PATH,
      `${layout.ENTRY_STATES.join(" ")} 3 0 2`,
      `${layout.IMAGE_KINDS.join(" ")} 2`,
      "",
    ].join("\n"),
  );
  // The names layout.ts builds from them are the ones its patterns take.
  const hash = "0".repeat(layout.HASH_HEX);
  assert.match(layout.entryName(1000, hash), layout.ENTRY_NAME);
  assert.match(layout.stepName(12, 3), layout.STEP_NAME);
  assert.match(`${layout.MOUNT_PREFIX}${layout.entryName(1000, hash)}.12.3.aB3dE9`, layout.MOUNT_NAME);
});

/** A C file's code without its comments (which may name what they describe). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, "")).replace(/\/\/.*$/gm, "");
}

/** What the stub must take from layout.gen.h rather than spell: one line each place it does. */
export function spelledInStub(files: Record<string, string>): string[] {
  const shared = [
    layout.ENTRY_PREFIX,
    layout.LOCK_FILE,
    layout.MOUNT_PREFIX,
    layout.STEP_PREFIX,
    ".pyxis_cache",
    ...layout.SAFE_PATH.split(":").map((dir) => `${dir}:`),
    "/usr/bin",
  ];
  const words = [...layout.ENTRY_STATES, ...layout.IMAGE_KINDS].map((w) => `"${w}"`);
  const found: string[] = [];
  for (const [file, text] of Object.entries(files)) {
    code(text).split("\n").forEach((line, i) => {
      const literals = line.match(/"(?:[^"\\]|\\.)*"/g) ?? [];
      for (const literal of literals) {
        const hit = shared.find((s) => literal.includes(s)) ?? words.find((w) => literal === w);
        if (hit) found.push(`${file}:${i + 1}: ${literal} (layout.gen.h has it)`);
      }
      // The lengths: a reply's tail and a mount point's, given as a number.
      if (/\b(reply_name\s*\([^,]+,[^,]+,\s*\d+\s*,|strlen\([^)]*\)\s*==\s*n\s*\+\s*\d)/.test(line)) {
        found.push(`${file}:${i + 1}: a length as a number (HASH_HEX, TAIL_ALNUM)`);
      }
    });
  }
  return found;
}

async function stubSources(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for await (const entry of Deno.readDir(STUB)) {
    if (/\.[ch]$/.test(entry.name) && entry.name !== "layout.gen.h") {
      files[entry.name] = await Deno.readTextFile(`${STUB}/${entry.name}`);
    }
  }
  return files;
}

Deno.test("the stub spells none of what layout.gen.h gives it", async () => {
  assert.deepEqual(spelledInStub(await stubSources()), []);
});

Deno.test("the drift check finds a name, a PATH, a reply word or a length spelled in C", () => {
  const found = spelledInStub({
    "a.c": [
      `/* .pyxis_cache_lock in a comment is fine */`,
      `snprintf(p, n, "pyxis_cache_u%u_", uid);`,
      `char env[] = "PATH=/usr/local/bin:/usr/bin:/bin";`,
      `if (strcmp(word, "unpacking") == 0)`,
      `reply_name(out, prefix, 20, 1, name, len);`,
      `return strlen(text) == n + 6;`,
      `const char *ok = "unpacking files";`,
    ].join("\n"),
  });
  assert.deepEqual(found.map((line) => line.slice(0, line.indexOf(": "))), [
    "a.c:2",
    "a.c:3",
    "a.c:4",
    "a.c:5",
    "a.c:6",
  ]);
});
