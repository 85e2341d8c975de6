/*
 * Child processes of slurmstepd (pyxis's enroot.c): forked with stdin at
 * /dev/null and their output captured, as the job user or as root.
 */
#ifndef PYXIS_CACHE_CHILD_H
#define PYXIS_CACHE_CHILD_H

#include <stddef.h>

#include "common.h"
#include "context.h"

/* The longest a child may run (an unpack of a large image included). */
#define CHILD_TIMEOUT_SECONDS 1800
#define CHILD_TIMEOUT_TEXT "30 minutes"

struct child_output {
	char out[8192];
	char err[ERROR_MAX];
};

/* Find name in PYXIS_CACHE_PATH: 0 with the absolute path in buf, or -1. */
int child_find_executable(const char *name, char *buf, size_t len);

/*
 * A child of slurm_spank_exit is still one of the step's processes, and Slurm
 * sends SIGTERM to those when the step ends: such a child ignores it (SIGKILL,
 * KillWait later, still ends it).
 */
#define CHILD_IGNORE_SIGTERM 1U

/*
 * Run argv (argv[0] an absolute path) in a child as the job user (user !=
 * NULL) or as root (NULL), with cwd as working directory and only PATH and
 * HOME in its environment; its stdout and stderr land in output. Returns the
 * exit status (signals as 128+N), or -1 with the reason in output->err (also
 * when it was stopped, or ran over CHILD_TIMEOUT_SECONDS: then it is killed).
 */
int child_exec(char *const argv[], const struct pyxis_job *user, const char *cwd, unsigned flags,
	       struct child_output *output);

/*
 * Turn a failed child into one line in err: its first stderr line, prefixed
 * with "pyxis-cache: <what>: " unless it already starts with "pyxis-cache:".
 */
void child_error(const char *what, int status, const struct child_output *output, char *err, size_t errlen);

#endif /* PYXIS_CACHE_CHILD_H */
