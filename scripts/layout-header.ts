/**
 * Prints spank-stub/layout.gen.h: what the SPANK stub shares with the command (names, lengths,
 * PATH, the words of `reuse --no-wait`'s reply), from lib/layout.ts, so that the two cannot
 * drift. spank-stub/Makefile runs it; tests/protocol.test.ts checks that the stub spells none
 * of these itself.
 *
 *   deno run --no-config --no-lock scripts/layout-header.ts > spank-stub/layout.gen.h
 */
import * as layout from "../lib/layout.ts";

/** A C string literal: printable ASCII without quotes or backslashes, checked rather than escaped. */
function cString(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text) || /["\\]/.test(text)) throw new Error(`not a plain C string: ${text}`);
  return `"${text}"`;
}

function words(type: string, prefix: string, list: readonly string[], comment: string): string[] {
  const members = list.map((w) => `${prefix}_${w.toUpperCase()}`).join(", ");
  return [
    `/* ${comment} */`,
    `enum ${type} { ${members} };`,
    `#define ${type.toUpperCase()}_WORDS { ${list.map(cString).join(", ")} }`,
  ];
}

/** Each #define: its C name, its value, and what a comment before it says. */
const DEFINES: [string, string | number, string?][] = [
  ["ENTRY_PREFIX", layout.ENTRY_PREFIX, "An entry's name: ENTRY_PREFIX, the uid, '_', HASH_HEX hex digits."],
  ["HASH_HEX", layout.HASH_HEX],
  ["LOCK_FILE", layout.LOCK_FILE, "In an entry: held shared while a step uses it."],
  [
    "MOUNT_PREFIX",
    layout.MOUNT_PREFIX,
    "A cold step's mount point: MOUNT_PREFIX, the entry's name, .<job>.<step>., TAIL_ALNUM letters and digits.",
  ],
  [
    "STEP_PREFIX",
    layout.STEP_PREFIX,
    "A step's own directory: STEP_PREFIX, <job>.<step>., TAIL_ALNUM letters and digits.",
  ],
  ["TAIL_ALNUM", layout.TAIL_ALNUM],
  [
    "NAMED_PREFIX",
    layout.NAMED_PREFIX,
    "A named container's directory: NAMED_PREFIX, the job (or g), '.', the name in hex.",
  ],
  ["ANSWERS_DIR", layout.ANSWERS_DIR, "In <base>: root's records of the entries the command named (answers.c)."],
  ["PYXIS_CACHE_PATH", layout.SAFE_PATH, "The system's directories: see SAFE_PATH in lib/layout.ts for who gets them."],
];

function define([name, value, comment]: [string, string | number, string?]): string[] {
  const line = `#define ${name} ${typeof value === "number" ? value : cString(value)}`;
  return comment ? [`/* ${comment} */`, line] : [line];
}

export function header(): string {
  return [
    "/* Generated from lib/layout.ts by scripts/layout-header.ts (spank-stub/Makefile): do not edit. */",
    "#ifndef PYXIS_CACHE_LAYOUT_GEN_H",
    "#define PYXIS_CACHE_LAYOUT_GEN_H",
    "",
    ...DEFINES.flatMap(define),
    "",
    ...words("entry_state", "ENTRY", layout.ENTRY_STATES, "reuse --no-wait's reply, its second word"),
    ...words("image_kind", "IMAGE", layout.IMAGE_KINDS, "and its third"),
    "",
    "#endif /* PYXIS_CACHE_LAYOUT_GEN_H */",
    "",
  ].join("\n");
}

if (import.meta.main) await Deno.stdout.write(new TextEncoder().encode(header()));
