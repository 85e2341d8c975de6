/*
 * Named containers (--container-name=NAME[:FLAGS], pyxis 0.24's meaning): a layer
 * kept on the cache filesystem over the cached entry, which every step with the
 * name mounts in turn; removed at the job's end (container_scope=job) or by the
 * collector. See docs/pyxis.md, "Named containers".
 */
#ifndef PYXIS_CACHE_NAMED_H
#define PYXIS_CACHE_NAMED_H

#include <stddef.h>

#include "context.h"

/* NAME's directory in <base>/<uid>: .pyxis_cache_named.<job>|g.<hex of NAME>. 0, or -1 when it does not fit. */
int named_dir_name(const struct plugin_context *ctx, const char *name, char *buf, size_t len);

/*
 * user_init, cache mode with a name: lock the named container's directory
 * (LOCK_EX, held until named_release: one step at a time), apply the flags as
 * pyxis does, lock its entry (or create it from the image, the first time) and
 * mount the step's overlay with the kept upper layer. Fills ctx->container as
 * cold_start does. 0, or -1 with one line in err.
 */
int named_start(struct plugin_context *ctx, char *err, size_t errlen);

/* exit: the directory's time refreshed (the collector's clock), its lock released. */
void named_release(struct container *c);

/*
 * slurm_spank_job_epilog (root, in slurmd's epilog): with container_scope=job,
 * "<cli> release --job J" as the job user removes the job's named containers.
 * Always 0: a failing epilog drains the node; a failure is logged, and the
 * collector removes what is left.
 */
int named_job_epilog(struct spank_handle *sp, int ac, char **av);

#endif /* PYXIS_CACHE_NAMED_H */
