/*
 * Everything the plugin logs (slurmd's log, through slurm_error/slurm_info) or
 * prints (srun's stderr) goes out through these. Much of it is what a user
 * chose: an image path, a directory, a name, a line a child printed. A newline
 * in an image's name would otherwise write a forged line of its own into
 * slurmd's log, and an escape sequence would drive the terminal of whoever
 * reads it; so every control byte is escaped (pyxis_escape) in the whole line.
 */
#ifndef PYXIS_CACHE_LOG_H
#define PYXIS_CACHE_LOG_H

#include <stddef.h>
#include <stdio.h>

/*
 * Copies s into out (outlen bytes, always NUL-terminated, never cut inside an
 * escape) with each C0 control byte, DEL and UTF-8 C1 control as \n, \r, \t or
 * \xHH, and a backslash as \\, so that what comes out is one line that reads
 * back unambiguously. Returns out.
 */
char *pyxis_escape(const char *s, char *out, size_t outlen);

/* slurm_error, slurm_info and slurm_debug of one escaped line. */
void pyxis_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pyxis_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pyxis_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * slurm_debug "pyxis-cache: at <what> <s>.<us>", a CLOCK_MONOTONIC stamp: where a
 * step's time goes, read back from slurmd's log (SlurmdDebug=debug) by bench/srun.sh.
 */
void pyxis_stamp(const char *what);

/* One escaped line on f (srun shows the task's stderr). */
void pyxis_print(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Each line of text as pyxis_print prints one (a child's log, several lines). */
void pyxis_print_lines(FILE *f, const char *text);

#endif /* PYXIS_CACHE_LOG_H */
