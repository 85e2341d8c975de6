/*
 * The runtimes (bwrap, enroot): the words put in front of a task's argv, and
 * the script that carries them on Slurm < 23.11. No Slurm calls, no Slurm
 * types: what it needs comes in struct runtime_task.
 */
#ifndef PYXIS_CACHE_RUNTIME_H
#define PYXIS_CACHE_RUNTIME_H

#include <limits.h>
#include <stddef.h>

#include "config.h"

/* Everything a runtime needs to run one task in a rootfs. */
struct runtime_task {
	enum container_runtime runtime;
	const char *runtime_bin; /* absolute path of bwrap or enroot */
	const char *rootfs;      /* bwrap: the directory bound at / */
	const char *enroot_data; /* enroot: ENROOT_DATA_PATH */
	const char *enroot_name; /* enroot: the container's name in it */
	const char *home;        /* the job's home, bound when it is a directory */
	const char *cwd;         /* the task's working directory */
	int writable;            /* leave / writable (a per-step copy only) */
};

#define RUNTIME_ARGV_MAX 40

/* The prefix words, and the storage of those that are built. */
struct runtime_argv {
	const char *argv[RUNTIME_ARGV_MAX];
	int argc;
	char env_bin[PATH_MAX];
	char data[PATH_MAX + 32];
	char mount[2 * PATH_MAX + 2];
};

/*
 * Fill prefix with "<runtime> <options...>" for task; the task's own argv
 * follows it. Returns 0, or -1 with one line in err.
 */
int runtime_prefix(const struct runtime_task *task, struct runtime_argv *prefix, char *err, size_t errlen);

/*
 * Slurm < 23.11: write "exec <prefix...> <argv0> "$@"" as a shell script into
 * a new memfd (inherited across exec, closed by the script itself) and put
 * "/proc/self/fd/N" in path. Returns 0, or -1 with one line in err.
 */
int runtime_script(const struct runtime_argv *prefix, const char *argv0, char *path, size_t pathlen, char *err,
		   size_t errlen);

#endif /* PYXIS_CACHE_RUNTIME_H */
