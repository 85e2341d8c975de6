/*
 * The runtimes (bwrap, enroot): where they are, and the command that starts
 * the step's container with each (container.c runs it). No Slurm calls, no
 * Slurm types: what they need comes in struct runtime_task.
 */
#ifndef PYXIS_CACHE_RUNTIME_H
#define PYXIS_CACHE_RUNTIME_H

#include <stddef.h>

#include "args.h"
#include "config.h"
#include "context.h"

struct enroot_fe;

/* What runs in the container until the stub has its namespaces. */
#define RUNTIME_STOP_COMMAND "kill -STOP $$; exit 0"

/* The descriptor bwrap writes its --info-fd JSON to (child_start's keep_fd). */
#define RUNTIME_INFO_FD 3

/* Everything a runtime needs to start the step's container. */
struct runtime_task {
	enum container_runtime runtime;
	const char *runtime_bin;  /* absolute path of bwrap or enroot */
	const char *search_path;  /* where it was found (slurmd's PATH): enroot's helpers too */
	const struct step_root *root; /* what the container's / is (its path is in root->mntns_fd's namespace) */
	const char *enroot_paths; /* enroot: a directory of the step's own for its other paths */
	char *const *job_env;     /* the job's environment (enroot's hooks see SLURM_*, ...) */
	const struct pyxis_job *job;
	const char *batch_script; /* the batch step's script, bound at its own path (read-only), or NULL */
	/* The step's container as args.c describes it, and what the stub resolved from it: */
	const struct container_args *args; /* mounts, --container-env, --container-unshare */
	int writable;   /* 1 leave / writable, 0 read-only, -1 unset: the runtime's default (runtime.c) */
	int mount_home; /* bind the job's home (asked, and a directory on the host) */
	int remap_root; /* root inside (the user namespace maps 0 to the user) */
	int entrypoint; /* run the image's entrypoint (/etc/rc) around the stopping shell */
	const struct enroot_fe *enroot_fe; /* enroot: its front end as the stub does it (NULL, or not ok: enroot start) */
};

/*
 * The runtime's program, searched in slurmd's PATH (child_search_path: the
 * environment of slurmstepd; PYXIS_CACHE_PATH when it has none), as pyxis finds enroot.
 * Returns 0 with its path in buf and the PATH searched in *search_path, or -1
 * with one line in err that says what was searched.
 */
int runtime_find(enum container_runtime runtime, char *buf, size_t len, const char **search_path, char *err,
		 size_t errlen);

/* Whether home is a directory on the host that can be bound (not "/"). */
int runtime_home_is_dir(const char *home);

/*
 * Before the runtime starts (in slurmstepd, effective uid the job user's):
 * every --container-mounts source that is a path exists (pyxis's check), and
 * every flag means something to this runtime. 0, or -1 with one line in err.
 */
int runtime_check(const struct runtime_task *task, char *err, size_t errlen);

/*
 * child_fn (arg: the struct runtime_task), in a child as the job user: exec
 * the runtime around "sh -c RUNTIME_STOP_COMMAND" in the container.
 */
int runtime_exec(void *arg);

/*
 * bwrap: what bwrap cannot express in --container-mounts (a propagation type, a
 * tmpfs's options other than size= and mode=, umount), done once bwrap has built
 * the container and its process stopped itself there (container.c):
 * runtime_bwrap_after_needed says whether there is any; runtime_bwrap_after
 * (child_fn, arg: struct runtime_after), in a child as the job user, joins that
 * process's user and mount namespaces and does it, in the mounts' order.
 */
struct runtime_after {
	int pid; /* the stopped process in the container */
	const struct runtime_task *task;
};

int runtime_bwrap_after_needed(const struct container_args *args);
int runtime_bwrap_after(void *arg);

#endif /* PYXIS_CACHE_RUNTIME_H */
