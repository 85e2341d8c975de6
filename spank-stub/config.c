/*
 * Parse the plugin's plugstack.conf arguments, pyxis config.c style: a struct
 * that starts with the defaults, then "key=value" words matched with strncmp.
 * The same keys are read by the pyxis-cache command; the stub passes them on
 * with --set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"

#define KEY_DATA_PATH "container_cache_data_path"
#define KEY_GC_HIGH   "container_cache_gc_high"
#define KEY_GC_LOW    "container_cache_gc_low"
#define KEY_RUNTIME   "container_cache_runtime"
#define KEY_CLI       "container_cache_cli"

static const struct plugin_config default_config = {
	.data_path = "",
	.gc_high = 85,
	.gc_low = 80,
	.runtime = RUNTIME_ENROOT,
	.cli = "/usr/local/bin/pyxis-cache",
};

const char *pyxis_config_runtime_name(enum container_runtime runtime)
{
	return runtime == RUNTIME_BWRAP ? "bwrap" : "enroot";
}

static int parse_percent(const char *s, int *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 99)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_path(const char *s, char *out, size_t len)
{
	if (s[0] != '/' || strlen(s) >= len)
		return -1;
	strcpy(out, s);
	return 0;
}

int pyxis_config_parse(struct plugin_config *cfg, int ac, char **av, char *err, size_t errlen)
{
	const char *val;
	int i;

	*cfg = default_config;

	for (i = 0; i < ac; ++i) {
		if (strncmp(av[i], KEY_DATA_PATH "=", sizeof(KEY_DATA_PATH)) == 0) {
			val = av[i] + sizeof(KEY_DATA_PATH);
			if (parse_path(val, cfg->data_path, sizeof(cfg->data_path)) < 0) {
				snprintf(err, errlen, PLUGIN_NAME ": " KEY_DATA_PATH ": invalid value: %s (must be an absolute path)", val);
				goto fail;
			}
		} else if (strncmp(av[i], KEY_GC_HIGH "=", sizeof(KEY_GC_HIGH)) == 0) {
			val = av[i] + sizeof(KEY_GC_HIGH);
			if (parse_percent(val, &cfg->gc_high) < 0) {
				snprintf(err, errlen, PLUGIN_NAME ": " KEY_GC_HIGH ": invalid value: %s (must be 1-99)", val);
				goto fail;
			}
		} else if (strncmp(av[i], KEY_GC_LOW "=", sizeof(KEY_GC_LOW)) == 0) {
			val = av[i] + sizeof(KEY_GC_LOW);
			if (parse_percent(val, &cfg->gc_low) < 0) {
				snprintf(err, errlen, PLUGIN_NAME ": " KEY_GC_LOW ": invalid value: %s (must be 1-99)", val);
				goto fail;
			}
		} else if (strncmp(av[i], KEY_RUNTIME "=", sizeof(KEY_RUNTIME)) == 0) {
			val = av[i] + sizeof(KEY_RUNTIME);
			if (strcmp(val, "enroot") == 0) {
				cfg->runtime = RUNTIME_ENROOT;
			} else if (strcmp(val, "bwrap") == 0) {
				cfg->runtime = RUNTIME_BWRAP;
			} else {
				snprintf(err, errlen, PLUGIN_NAME ": " KEY_RUNTIME ": invalid value: %s (must be enroot or bwrap)", val);
				goto fail;
			}
		} else if (strncmp(av[i], KEY_CLI "=", sizeof(KEY_CLI)) == 0) {
			val = av[i] + sizeof(KEY_CLI);
			if (parse_path(val, cfg->cli, sizeof(cfg->cli)) < 0) {
				snprintf(err, errlen, PLUGIN_NAME ": " KEY_CLI ": invalid value: %s (must be an absolute path)", val);
				goto fail;
			}
		} else {
			snprintf(err, errlen, PLUGIN_NAME ": %.*s: unknown configuration key",
				 (int)strcspn(av[i], "="), av[i]);
			goto fail;
		}
	}

	if (cfg->data_path[0] == '\0') {
		snprintf(err, errlen, PLUGIN_NAME ": " KEY_DATA_PATH ": missing (required)");
		goto fail;
	}

	if (cfg->gc_low >= cfg->gc_high) {
		snprintf(err, errlen, PLUGIN_NAME ": " KEY_GC_LOW ": invalid value: %d (must be below " KEY_GC_HIGH ")",
			 cfg->gc_low);
		goto fail;
	}

	return 0;

fail:
	return -1;
}
