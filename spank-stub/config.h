/*
 * The plugin's plugstack.conf arguments (the keys of its line).
 */
#ifndef PYXIS_CACHE_CONFIG_H
#define PYXIS_CACHE_CONFIG_H

#include <limits.h>
#include <stddef.h>

enum container_runtime {
	RUNTIME_ENROOT,
	RUNTIME_BWRAP,
};

struct plugin_config {
	char data_path[PATH_MAX];       /* container_cache_data_path, required */
	int gc_high;                    /* container_cache_gc_high, 85 */
	int gc_low;                     /* container_cache_gc_low, 80 */
	enum container_runtime runtime; /* container_cache_runtime, enroot */
	char cli[PATH_MAX];             /* container_cache_cli */
	int registry_interval;          /* container_cache_registry_interval, 60 (the command's; checked here alike) */
	int fuse;                       /* container_cache_fuse, yes: a cold step starts from a FUSE mount */
	int user_limit;                 /* container_cache_user_limit, off (0): percent of the cache one user may hold */
};

/* lib/config.ts's MAX_REGISTRY_INTERVAL: a day. */
#define MAX_REGISTRY_INTERVAL 86400

/*
 * Parse av[] into cfg (defaults first). Returns 0, or -1 with a one-line
 * message naming the key in err.
 */
int pyxis_config_parse(struct plugin_config *cfg, int ac, char **av, char *err, size_t errlen);

const char *pyxis_config_runtime_name(enum container_runtime runtime);

#endif /* PYXIS_CACHE_CONFIG_H */
