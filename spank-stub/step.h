/*
 * What user_init sets up for a step, in order: the job from Slurm, the user's
 * directory (root), the rootfs and the step's own directory (the command, as
 * the user), the container (the runtime, as the user); and what exit undoes.
 */
#ifndef PYXIS_CACHE_STEP_H
#define PYXIS_CACHE_STEP_H

#include <stddef.h>

#include <slurm/spank.h>

#include "context.h"

/* Everything user_init does for a container step. Returns 0, or -1 with one line in err. */
int step_setup(spank_t sp, struct plugin_context *ctx, char *err, size_t errlen);

/* Close the namespaces and the locks; "<cli> release" removes the step's directory. */
void step_teardown(struct plugin_context *ctx);

#endif /* PYXIS_CACHE_STEP_H */
