/*
 * Attaching a step to a running container (--container-name=NAME[:FLAGS],
 * pyxis 0.24's "exec" and "auto" on a running one): the step starts no
 * runtime; each task joins the namespaces of the container's process as the
 * job user, as pyxis's task_init does. See docs/pyxis.md, "Attaching to a
 * running container".
 *
 * The step that runs a container leaves a record of it in the named
 * container's directory, <base>/<uid>/.pyxis_cache_named.<job>|g.<hex>/running
 * (an unnamed cache-mode step: the directory of the name "<job>.<step>",
 * which pyxis gives its unnamed containers, made for the record and removed at
 * exit). The record is the user's file: what it names is checked (the
 * process is alive, the job user's, in the recorded mount namespace) before
 * anything is joined, and the task joins with the job user's credentials.
 */
#ifndef PYXIS_CACHE_ATTACH_H
#define PYXIS_CACHE_ATTACH_H

#include <stddef.h>

#include "context.h"

/* In the named container's directory: the record of the running container, and the attached steps' lock. */
#define ATTACH_RECORD "running"
#define ATTACH_LOCK "attached"

/*
 * user_init, a step with --container-name (flags other than no_exec): read the
 * record of NAME without taking the container's lock. 1 when a running container
 * was found (ctx->container.attach and its fields filled, its entry and the
 * attached lock held), 0 when none runs, -1 with one line in err.
 */
int attach_find(struct plugin_context *ctx, char *err, size_t errlen);

/* user_init, an unnamed cache-mode step: the directory of the name "<job>.<step>" for its record. */
int attach_record_dir(struct plugin_context *ctx, char *err, size_t errlen);

/*
 * The running step's own task (local task 0, task_init, as the job user, in the
 * container's mount namespace): write the record. Failures are logged only.
 */
void attach_record(const struct plugin_context *ctx);

/*
 * task_init, as the job user, an attaching step: join the running container's
 * namespaces (user unless the job user is root, cgroup, mnt, and ipc/uts/net
 * when they are not the node's). 0, or -1 with one line in err.
 */
int attach_join(const struct plugin_context *ctx, char *err, size_t errlen);

/* exit (root): remove this step's record (and the directory made for it); close what attaching held. */
void attach_release(struct plugin_context *ctx);

/* Wait (bounded) until no step is attached to the container of dirfd: the next step may mount its layer. */
int attach_wait_detached(int dirfd, const char *name, char *err, size_t errlen);

#endif /* PYXIS_CACHE_ATTACH_H */
