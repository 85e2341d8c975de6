/**
 * Merges `pyxis-cache status --json` reports gathered from many nodes (for
 * example `srun -N64 --ntasks-per-node=1 pyxis-cache status --json`) into one
 * view: the reports may be concatenated, one per line or not, and lines may
 * carry `srun --label` prefixes; anything between reports is skipped.
 */
import { describe, UsageError } from "../os/errors.ts";
import type { Status } from "./status.ts";

/** Splits text into the top-level JSON objects it holds, skipping what lies between them. */
export function splitObjects(text: string): string[] {
  const objects: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (depth === 0) {
      if (c === "{") {
        start = i;
        depth = 1;
      }
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) {
      objects.push(text.slice(start, i + 1));
    }
  }
  return objects;
}

function isStatus(value: unknown): value is Status {
  const s = value as Status;
  return typeof s === "object" && s !== null && typeof s.usage === "number" && Array.isArray(s.entries);
}

const LABEL = /^\s*(\d+): ?/;

/**
 * `srun --label` output taken apart: when every line that is not blank starts with a task's
 * label, each task's lines (without it) one after the other, in the order of the labels, so
 * that reports whose lines srun interleaved are whole again. Anything else is as it was.
 */
export function unlabelled(text: string): string {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0 || !lines.every((line) => LABEL.test(line))) return text;
  const tasks = new Map<number, string[]>();
  for (const line of lines) {
    const label = LABEL.exec(line)!;
    const task = Number(label[1]);
    const kept = tasks.get(task) ?? [];
    kept.push(line.slice(label[0].length));
    tasks.set(task, kept);
  }
  return [...tasks].sort((a, b) => a[0] - b[0]).map(([, task]) => task.join("\n")).join("\n");
}

/**
 * The reports in `text` (named `source` in errors), one per node: when a
 * node reports twice, the later report wins. A report without a `node` field
 * is named after its source and position.
 */
export function parseReports(text: string, source: string): Status[] {
  const reports: Status[] = [];
  for (const [i, object] of splitObjects(unlabelled(text)).entries()) {
    let value: unknown;
    try {
      value = JSON.parse(object);
    } catch (error) {
      throw new UsageError(`${source}: report ${i + 1}: not JSON: ${describe(error)}`);
    }
    if (!isStatus(value)) throw new UsageError(`${source}: report ${i + 1}: not a status report`);
    reports.push({ ...value, node: typeof value.node === "string" ? value.node : `${source}#${i + 1}` });
  }
  return reports;
}

export interface Merged {
  nodes: Status[];
  /** Per image: the nodes whose cache holds it (for pre-warming checks). */
  images: { image: string; nodes: string[] }[];
}

export function merge(reports: Status[]): Merged {
  const byNode = new Map<string, Status>();
  for (const report of reports) byNode.set(report.node, report);
  const nodes = [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node, "en", { numeric: true }));
  const images = new Map<string, Set<string>>();
  for (const node of nodes) {
    for (const entry of node.entries) {
      const image = entry.image ?? "?";
      images.set(image, (images.get(image) ?? new Set()).add(node.node));
    }
  }
  return {
    nodes,
    images: [...images].sort((a, b) => a[0].localeCompare(b[0])).map(([image, set]) => ({ image, nodes: [...set] })),
  };
}
