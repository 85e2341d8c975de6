/*
 * The runtimes (bwrap, enroot), run as pyxis runs enroot: once per step, in
 * user_init, the runtime sets up the container around a process that stops
 * itself; the stub keeps that process's user and mount namespaces open, and
 * every task joins them just before Slurm execs it. Nothing sits between
 * slurmstepd and the task. No Slurm calls, no Slurm types.
 */
#ifndef PYXIS_CACHE_RUNTIME_H
#define PYXIS_CACHE_RUNTIME_H

#include <stddef.h>

#include "config.h"
#include "context.h"

/* Everything a runtime needs to start the step's container. */
struct runtime_task {
	enum container_runtime runtime;
	const char *runtime_bin;  /* absolute path of bwrap or enroot */
	const char *search_path;  /* where it was found (slurmd's PATH): enroot's helpers too */
	const char *rootfs;       /* bwrap: the directory bound at / */
	const char *enroot_data;  /* enroot: ENROOT_DATA_PATH */
	const char *enroot_name;  /* enroot: the container's name in it */
	const char *enroot_paths; /* enroot: a directory of the step's own for its other paths */
	char *const *job_env;     /* the job's environment (enroot's hooks see SLURM_*, ...) */
	const struct pyxis_job *job;
	int writable; /* leave / writable (a per-step copy only) */
};

/*
 * The runtime's program, searched in slurmd's PATH (the environment of
 * slurmstepd; PYXIS_CACHE_PATH when it has none), as pyxis finds enroot.
 * Returns 0 with its path in buf and the PATH searched in *search_path, or -1
 * with one line in err that says what was searched.
 */
int runtime_find(enum container_runtime runtime, char *buf, size_t len, const char **search_path, char *err,
		 size_t errlen);

/*
 * In slurmstepd (user_init): start the container as the job user, keep its
 * namespaces (c->userns_fd, c->mntns_fd) and, for enroot, its environment
 * (c->environ), then end its process. Returns 0, or -1 with one line in err.
 */
int runtime_start(const struct runtime_task *task, struct container *c, char *err, size_t errlen);

/* In the task, as root (task_init_privileged): enter the container's mounts, chdir to cwd. */
int runtime_join_mounts(const struct container *c, const char *cwd, char *err, size_t errlen);

/* In the task, as the job user (task_init): enter the container's user namespace. */
int runtime_join_user(const struct container *c, char *err, size_t errlen);

/* Close the namespaces, free the environment. */
void runtime_release(struct container *c);

#endif /* PYXIS_CACHE_RUNTIME_H */
