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

/* pyxis's container_scope: where a --container-name lives (named containers are not built yet). */
enum container_scope {
	SCOPE_GLOBAL,
	SCOPE_JOB,
};

/*
 * pyxis 0.24's own keys, accepted on the plugin's line with pyxis's meaning so
 * that a site's pyxis line keeps working (docs/pyxis.md, "plugstack keys").
 */
struct pyxis_keys {
	char runtime_path[PATH_MAX];          /* runtime_path, /run/pyxis: unused (the step's directory is under <base>) */
	int execute_entrypoint;               /* execute_entrypoint, no: the default of --container-entrypoint */
	enum container_scope container_scope; /* container_scope, global */
	int sbatch_support;                   /* sbatch_support, yes: the options in sbatch and salloc, the batch step */
	int use_enroot_load;                  /* use_enroot_load, no: accepted (a registry image is imported either way) */
	int use_squashfuse;                   /* use_squashfuse, no: accepted (container_cache_fuse is the cache's) */
	/* importer: only empty (pyxis's default, no importer); a path is refused */
};

struct plugin_config {
	char data_path[PATH_MAX];       /* container_cache_data_path, required */
	int gc_high;                    /* container_cache_gc_high, 85 */
	int gc_low;                     /* container_cache_gc_low, 80 */
	enum container_runtime runtime; /* container_cache_runtime, enroot */
	char cli[PATH_MAX];             /* container_cache_cli */
	int registry_interval;          /* container_cache_registry_interval, 60 (the command's; checked here alike) */
	int fuse;                       /* container_cache_fuse, yes: a cold step starts from a FUSE mount */
	struct pyxis_keys pyxis;        /* pyxis's own keys */
	int user_limit;                 /* container_cache_user_limit, off (0): percent of the cache one user may hold */
	int answers;                    /* container_cache_answers, yes: a warm step of a file image answered from root's record (answers.c) */
	char layer_size[16];            /* container_cache_layer_size, 1g: a cache-mode step's tmpfs (its layer), size= */
};

/* lib/config/config.ts's MAX_REGISTRY_INTERVAL: a day. */
#define MAX_REGISTRY_INTERVAL 86400

/*
 * Parse av[] into cfg (defaults first). Returns 0, or -1 with a one-line
 * message naming the key in err.
 */
int pyxis_config_parse(struct plugin_config *cfg, int ac, char **av, char *err, size_t errlen);

const char *pyxis_config_runtime_name(enum container_runtime runtime);

const char *pyxis_config_scope_name(enum container_scope scope);

#endif /* PYXIS_CACHE_CONFIG_H */
