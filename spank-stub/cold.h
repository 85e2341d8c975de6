/*
 * Cache mode's start in user_init: a warm step locks its entry and lays a
 * layer of its own over it (mounter.c); a cold one, where FUSE is available,
 * starts the entry's creator in the background and runs from a squashfuse_ll
 * mount of the image meanwhile (fuse.c); otherwise (a registry image, no FUSE,
 * container_cache_fuse=no) it waits for the unpack (then warm).
 */
#ifndef PYXIS_CACHE_COLD_H
#define PYXIS_CACHE_COLD_H

#include <stddef.h>

#include "context.h"

/*
 * Fill ctx->container.root, what the step runs in (and the entry's name and
 * lock, and its mount: the FUSE mount of a cold step, or the layer of a warm
 * one, both an overlay with the step's own upper in ctx->container.fuse). search_path:
 * slurmd's PATH (where squashfuse_ll is looked for). Returns 0, or -1 with one
 * line in err.
 */
int cold_start(struct plugin_context *ctx, const char *image, const char *search_path, char *err, size_t errlen);

/* A cold step's unpack in the background, once its runtime has started (or failed to). */
void cold_start_creator(struct plugin_context *ctx);

#endif /* PYXIS_CACHE_COLD_H */
