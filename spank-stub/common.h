/*
 * Shared declarations of spank_pyxis_cache.so.
 *
 * One error convention in every file: a function that can fail returns 0 or
 * -1, leaves on a single `fail:` label (goto), and on -1 has written one line
 * starting with "pyxis-cache: " into the caller's err buffer (ERROR_MAX
 * bytes). Only the callbacks in slurmstepd.c and srun.c decide what happens to
 * that line (record it for task_init, or slurm_error it).
 */
#ifndef PYXIS_CACHE_COMMON_H
#define PYXIS_CACHE_COMMON_H

#include <stddef.h>

/* What the command and the stub share (names, lengths, PATH, reply words), from lib/layout.ts. */
#include "layout.gen.h"

#define PLUGIN_NAME "pyxis-cache"

#define ERROR_MAX 1024

#endif /* PYXIS_CACHE_COMMON_H */
