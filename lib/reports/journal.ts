/**
 * Output lines for a terminal, cron or the systemd journal. In journal mode
 * each line starts with its sd-daemon(3) priority (`<3>` error, `<4>`
 * warning, `<5>` notice, `<6>` info), which journald turns into the entry's
 * priority. Journal mode is on with `--journal`, or by itself when stdout or
 * stderr is the journal stream systemd names in $JOURNAL_STREAM.
 */

export type Level = "err" | "warning" | "notice" | "info";

const PRIORITY: Record<Level, number> = { err: 3, warning: 4, notice: 5, info: 6 };

export interface LogOptions {
  journal?: boolean;
  /** Print only warnings and errors (cron mails whatever a job prints). */
  quiet?: boolean;
  /** What error and warning lines start with, after the priority. */
  prefix?: string;
}

/** systemd sets JOURNAL_STREAM=<dev>:<inode> when it connects stdout or stderr to the journal. */
export async function journalStream(): Promise<boolean> {
  let stream: string | undefined;
  try {
    stream = Deno.env.get("JOURNAL_STREAM");
  } catch {
    return false; // not granted --allow-env=JOURNAL_STREAM
  }
  if (!stream) return false;
  // Deno refuses to stat /proc/self/fd/N without --allow-all; fstat(2) through node:fs needs nothing.
  const { fstatSync } = await import("node:fs");
  for (const fd of [1, 2]) {
    try {
      const info = fstatSync(fd);
      if (stream === `${info.dev}:${info.ino}`) return true;
    } catch { /* fd closed */ }
  }
  return false;
}

export class Log {
  private constructor(readonly options: LogOptions, readonly journal: boolean) {}

  static async create(options: LogOptions = {}): Promise<Log> {
    return new Log(options, options.journal ?? await journalStream());
  }

  /** Info and notice lines go to stdout, warnings and errors to stderr. */
  line(level: Level, text: string): void {
    const serious = level === "err" || level === "warning";
    if (this.options.quiet && !serious) return;
    const body = serious && this.options.prefix ? `${this.options.prefix}${text}` : text;
    const out = this.journal ? `<${PRIORITY[level]}>${body}` : body;
    (serious ? console.error : console.log)(out);
  }
}
