/** The commands run as the job user: unsquashfs (unpack.ts) and `enroot import` (enroot.ts). */
import { CacheError } from "./errors.ts";
import { isRoot, type Owner } from "./users.ts";

/**
 * Every command is started through `setpriv --pdeathsig KILL`: the kernel kills it when the
 * thread that spawned it dies, so a killed `reuse` leaves no unsquashfs filling the disk nor
 * enroot running on unseen, however fast the machine and whatever the image. Order matters:
 * the kernel clears the parent-death signal when a process's credentials change, so the
 * switch to the job user (Deno's uid/gid, before exec) comes first and setpriv sets the
 * signal after it. setpriv finds the command on the PATH the command is given.
 */
const PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"];

export interface Ran {
  code: number;
  success: boolean;
  /** What it said on stderr, line by line, trimmed, without empty lines. */
  stderrLines: string[];
}

/**
 * Runs `argv` (through PDEATHSIG) as `owner` when we are root and the owner is not, in
 * `env` alone (Deno refuses to spawn with LD_* in the environment, and a clean one is right
 * anyway), with nothing on stdin; its stdout (a progress bar, say) goes into a pipe that is
 * drained and discarded, and its stderr is kept for the caller's message.
 */
export async function runAsOwner(
  argv: string[],
  options: { env: Record<string, string>; cwd?: string },
  owner: Owner,
): Promise<Ran> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(PDEATHSIG[0]!, {
      args: [...PDEATHSIG.slice(1), ...argv],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      clearEnv: true,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(isRoot() && owner.uid !== 0 ? { uid: owner.uid, gid: owner.gid } : {}),
    }).spawn();
  } catch (error) {
    throw new CacheError(`cannot run ${[...PDEATHSIG, argv[0]].join(" ")}: ${(error as Error).message}`);
  }
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    child.stdout.pipeTo(new WritableStream()),
  ]);
  const stderrLines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  return { code: status.code, success: status.success, stderrLines };
}

/** Whether the command said it ran out of space (the caller may collect and try again). */
export function noSpace(lines: string[]): boolean {
  return lines.some((l) => /No space left on device/i.test(l));
}
