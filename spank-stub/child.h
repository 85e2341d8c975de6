/*
 * Child processes of slurmstepd (pyxis's enroot.c): forked with stdin at
 * /dev/null and their output captured, as the job user or as root.
 */
#ifndef PYXIS_CACHE_CHILD_H
#define PYXIS_CACHE_CHILD_H

#include <stddef.h>

#include "common.h"
#include "context.h"

struct child_output {
	char out[8192];
	char err[ERROR_MAX];
};

typedef int (*child_fn)(void *arg);

#include <sys/types.h>

/* Find name in path (a PATH value): 0 with the absolute path in buf, or -1. */
int child_find_executable(const char *name, const char *path, char *buf, size_t len);

/*
 * Run fn(arg) in a child as the job user (user != NULL) or as root (NULL),
 * with cwd as working directory; its stdout and stderr land in output.
 * Returns the exit status (signals as 128+N), or -1 with the reason in
 * output->err.
 */
int child_run(child_fn fn, void *arg, const struct pyxis_job *user, const char *cwd, struct child_output *output);

/*
 * Fork a child running fn(arg) as child_run does, with stdout on out_fd and
 * stderr on err_fd, and return its pid at once (-1: fork failed).
 */
pid_t child_spawn(child_fn fn, void *arg, const struct pyxis_job *user, const char *cwd, int out_fd, int err_fd);

/* What a child wrote into the memfd fd: NUL-terminated, trailing newlines cut. */
void child_read_capture(int fd, char *buf, size_t len);

/* child_run of execve(argv[0], argv) with PATH and HOME only in the environment. */
int child_exec(char *const argv[], const struct pyxis_job *user, const char *cwd, struct child_output *output);

/*
 * Turn a failed child into one line in err: its first stderr line, prefixed
 * with "pyxis-cache: <what>: " unless it already starts with "pyxis-cache:".
 */
void child_error(const char *what, int status, const struct child_output *output, char *err, size_t errlen);

#endif /* PYXIS_CACHE_CHILD_H */
