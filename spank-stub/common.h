/*
 * Shared declarations of spank_pyxis_cache.so.
 */
#ifndef PYXIS_CACHE_COMMON_H
#define PYXIS_CACHE_COMMON_H

#include <stddef.h>

#define PLUGIN_NAME "pyxis-cache"

/* Fixed PATH used to find runtimes and given to every child we start. */
#define PYXIS_CACHE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define ERROR_MAX 1024

#endif /* PYXIS_CACHE_COMMON_H */
