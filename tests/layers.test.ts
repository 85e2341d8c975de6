/**
 * lib/ in layers, as docs/architecture.md draws them ("The layers of lib/"): every import of
 * a lib/ module, static or dynamic, goes to its own layer or one above it in that table.
 */
import assert from "node:assert/strict";
import { ROOT } from "./helpers.ts";

export interface Layer {
  /** `lib/layout.ts` (one module) or `lib/os/` (a folder). */
  path: string;
  modules: string[];
}

/** The table under "## The layers of lib/": its first two columns, top row first. */
export function layersOf(markdown: string): Layer[] {
  const section = markdown.split(/^## The layers of lib\/\n/m)[1]?.split(/^## /m)[0];
  if (section === undefined) throw new Error("docs/architecture.md: no section 'The layers of lib/'");
  const layers: Layer[] = [];
  for (const line of section.split("\n")) {
    const row = /^\| `(lib\/[^`]+)` \| ([a-z, ]+) \|/.exec(line);
    if (row) layers.push({ path: row[1]!, modules: row[2]!.split(",").map((m) => m.trim()) });
  }
  return layers;
}

/** The relative specifiers a module imports: `from "..."`, `import "..."` and `import("...")`. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) found.push(m[1]!);
  return found;
}

function layerIndex(layers: Layer[], file: string): number {
  return layers.findIndex((l) => (l.path.endsWith("/") ? file.startsWith(l.path) : file === l.path));
}

function resolve(from: string, specifier: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

/** One line for each import that goes down the layers, or leaves lib/, or a file no layer has. */
export function violations(layers: Layer[], files: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [file, source] of Object.entries(files)) {
    const from = layerIndex(layers, file);
    if (from < 0) {
      found.push(`${file}: in no layer of docs/architecture.md`);
      continue;
    }
    for (const specifier of importsOf(source)) {
      const target = resolve(file, specifier);
      const to = layerIndex(layers, target);
      if (to < 0) found.push(`${file} imports ${target}: outside the layers`);
      else if (to > from) {
        found.push(`${file} (${layers[from]!.path}) imports ${target} (${layers[to]!.path}): a layer below`);
      }
    }
  }
  return found;
}

async function libFiles(dir = `${ROOT}/lib`, into: Record<string, string> = {}): Promise<Record<string, string>> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) await libFiles(path, into);
    else if (entry.name.endsWith(".ts")) into[path.slice(ROOT.length + 1)] = await Deno.readTextFile(path);
  }
  return into;
}

const layers = layersOf(await Deno.readTextFile(`${ROOT}/docs/architecture.md`));

Deno.test("docs/architecture.md's layers hold every lib/ module, each once, where the table says", async () => {
  const files = Object.keys(await libFiles()).sort();
  const listed = layers.flatMap((l) => l.modules.map((m) => (l.path.endsWith("/") ? `${l.path}${m}.ts` : l.path)));
  assert.deepEqual([...listed].sort(), files);
  assert.equal(layers[0]?.path, "lib/layout.ts", "layout.ts is the top layer: it imports nothing");
});

Deno.test("every import in lib/ goes to its own layer or one above it", async () => {
  assert.deepEqual(violations(layers, await libFiles()), []);
});

Deno.test("the layer check finds an import down the layers, out of lib/, or from no layer", () => {
  const table = [
    { path: "lib/layout.ts", modules: ["layout"] },
    { path: "lib/os/", modules: ["files"] },
    { path: "lib/cache/", modules: ["reuse"] },
  ];
  const found = violations(table, {
    "lib/layout.ts": `import { x } from "./os/files.ts";`,
    "lib/os/files.ts": `import { y } from "../layout.ts";\nconst { z } = await import("../cache/reuse.ts");`,
    "lib/cache/reuse.ts": `import type { T } from "../os/files.ts";\nimport "../../cmd/main.ts";`,
    "lib/stray.ts": ``,
  });
  assert.deepEqual(found, [
    "lib/layout.ts (lib/layout.ts) imports lib/os/files.ts (lib/os/): a layer below",
    "lib/os/files.ts (lib/os/) imports lib/cache/reuse.ts (lib/cache/): a layer below",
    "lib/cache/reuse.ts imports cmd/main.ts: outside the layers",
    "lib/stray.ts: in no layer of docs/architecture.md",
  ]);
});
