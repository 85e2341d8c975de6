/** A mistake in how the command was called or configured: exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Anything else that went wrong: exit status 1. */
export class CacheError extends Error {
  override name = "CacheError";
}

/**
 * A child (unsquashfs, enroot import) ran out of space (spawn.ts's noSpace): the caller may
 * collect and try again (room.ts).
 */
export class NoSpaceError extends CacheError {
  override name = "NoSpaceError";
}

export function exitCodeFor(error: unknown): number {
  return error instanceof UsageError ? 2 : 1;
}

/** One line for stderr: our own errors as they are, Deno's with their kind. */
export function describe(error: unknown): string {
  if (error instanceof UsageError || error instanceof CacheError) {
    return error.message;
  }
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
  return String(error);
}
