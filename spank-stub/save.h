/*
 * --container-save in cache mode: the step's merged view, saved as a squashfs at
 * the step's end (save.c). No Slurm calls.
 */
#ifndef PYXIS_CACHE_SAVE_H
#define PYXIS_CACHE_SAVE_H

#include <stddef.h>

#include "context.h"

/*
 * Save the step's overlay (c->fuse: its layer over the entry or the image's mount)
 * to save (relative: against job->cwd) with mksquashfs -all-root, as the job user,
 * in the step's mount namespace. 0, or -1 with one line in err.
 */
int save_container(const struct container *c, const struct pyxis_job *job, const char *save, char *err,
		   size_t errlen);

#endif /* PYXIS_CACHE_SAVE_H */
