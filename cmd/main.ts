/** pyxis-cache: the entry point only dispatches; each subcommand lives in its own file. */
import { describe, exitCodeFor } from "../lib/os/errors.ts";

interface Command {
  help: string;
  run(args: string[]): Promise<number>;
}

// Loaded on demand, so that each call pays only for the command it runs.
const COMMANDS: Record<string, () => Promise<Command>> = {
  reuse: () => import("./reuse.ts"),
  gc: () => import("./gc.ts"),
  status: () => import("./status.ts"),
  key: () => import("./key.ts"),
  prepare: () => import("./prepare.ts"),
  step: () => import("./step.ts"),
  release: () => import("./release.ts"),
};

export const HELP = `pyxis-cache: a node-local cache of unpacked container root filesystems for Slurm

Usage: pyxis-cache <command> [options]

Commands:
  reuse     make sure an image's rootfs is in the cache, and print where
  gc        evict least recently used entries down to the low watermark
  status    filesystem use against the watermarks, and every entry
  key       print the entry name an image has
  prepare   create or repair a user's cache directory (root only)
  step      unpack an image for one job step, outside the cache (the stub's)
  release   remove a job step's own rootfs (the stub's)

Run 'pyxis-cache <command> --help' for a command's options.
Exit status: 0 ok, 1 failure, 2 usage or configuration error.`;

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? console.error : console.log)(HELP);
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`pyxis-cache: unknown command: ${name} (see pyxis-cache --help)`);
    return 2;
  }
  try {
    return await (await load()).run(rest);
  } catch (error) {
    console.error(`pyxis-cache: ${name}: ${describe(error)}`);
    if (rest.includes("--verbose") && error instanceof Error) console.error(error.stack);
    return exitCodeFor(error);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
