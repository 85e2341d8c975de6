/*
 * The step's container, run as pyxis runs enroot: once per step, in
 * user_init, the runtime sets it up around a process that stops itself; the
 * stub keeps that process's user and mount namespaces open, and every task
 * joins them just before Slurm execs it. Nothing sits between slurmstepd and
 * the task. No Slurm calls, no Slurm types.
 */
#ifndef PYXIS_CACHE_CONTAINER_H
#define PYXIS_CACHE_CONTAINER_H

#include <stddef.h>

#include "context.h"
#include "runtime.h"

/*
 * In slurmstepd (user_init): start the container as the job user, keep its
 * namespaces (c->userns_fd, c->mntns_fd) and, for enroot, its environment
 * (c->environ), then end its process. Returns 0, or -1 with one line in err.
 */
int container_start(const struct runtime_task *task, struct container *c, char *err, size_t errlen);

/* In the task, as root (task_init_privileged): enter the container's mounts (the task is then in its /). */
int container_join_mounts(const struct container *c, char *err, size_t errlen);

/*
 * In the task, as the job user (task_init): chdir to cwd in the container, else to /.
 * Never as root: the path may lead through a FUSE mount the user serves (a cold step's).
 */
int container_chdir(const char *cwd, char *err, size_t errlen);

/* In the task, as the job user (task_init): enter the container's user namespace. */
int container_join_user(const struct container *c, char *err, size_t errlen);

/* Close the namespaces, free the environment. */
void container_release(struct container *c);

#endif /* PYXIS_CACHE_CONTAINER_H */
